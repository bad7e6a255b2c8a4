import GatehouseIdentity
import PostgresNIO

/// `gatehouse store migrate`: filling an empty PostgreSQL store from another store's tables.
extension PostgresIdentityStore {
    /// Flags are integers in ``StoreTable``; booleans here.
    private static let booleanColumns: Set<String> = ["disabled", "revoked", "spent"]

    /// How many rows each Gatehouse table holds (the schema must exist: ``prepare()``).
    public func rowCounts() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for table in StoreTable.schema {
            counts[table.name] = try await count(table.name)
        }
        return counts
    }

    private func count(_ table: String) async throws -> Int {
        try await runUnbounded { client, logger in
            var count = 0
            for try await value in try await client.query("SELECT count(*) FROM \(unescaped: table)", logger: logger).decode(Int64.self) {
                count = Int(value)
            }
            return count
        }
    }

    /// Copies `table` in one transaction and checks that the database then holds exactly its rows; returns how
    /// many were copied.
    public func importTable(_ table: StoreTable) async throws -> Int {
        guard let known = StoreTable.schema.first(where: { $0.name == table.name }), known.columns == table.columns else {
            throw IdentityStoreError.unavailable("table \(table.name) does not match the schema")
        }
        let placeholders = (1...table.columns.count).map { "$\($0)" }.joined(separator: ", ")
        let sql = "INSERT INTO \(table.name) (\(table.columns.joined(separator: ", "))) VALUES (\(placeholders))"
        let booleans = table.columns.map { Self.booleanColumns.contains($0) }
        try await runUnbounded { client, logger in
            try await client.transaction(logger: logger) { connection in
                for row in table.rows {
                    var bindings = PostgresBindings(capacity: row.count)
                    for (index, value) in row.enumerated() {
                        switch value {
                        case .null: bindings.appendNull()
                        case .integer(let number):
                            if booleans[index] { bindings.append(number != 0) } else { bindings.append(number) }
                        case .text(let text): bindings.append(text)
                        case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
                        }
                    }
                    try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
                }
                if table.name == "revocations" {
                    // Later revocations continue after the copied ids.
                    try await connection.query(
                        "SELECT setval(pg_get_serial_sequence('revocations', 'id'), GREATEST((SELECT max(id) FROM revocations), 1))", logger: logger)
                }
            }
        }
        let stored = try await count(table.name)
        guard stored == table.rows.count else {
            throw IdentityStoreError.unavailable("table \(table.name): copied \(table.rows.count) rows but the database holds \(stored)")
        }
        return stored
    }
}
