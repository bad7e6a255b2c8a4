import GatehouseIdentity
import PostgresNIO

/// `gatehouse store migrate`: filling an empty PostgreSQL store from another store's tables.
extension PostgresIdentityStore {
    /// Flags are integers in ``StoreTable``; booleans here.
    private static let booleanColumns: Set<String> = ["disabled", "revoked", "spent", "email_verified"]

    /// How many rows each Gatehouse table holds (the schema must exist: ``prepare()``).
    public func rowCounts() async throws -> [String: Int] {
        try await runUnbounded { connection, logger in
            var counts: [String: Int] = [:]
            for table in StoreTable.schema { counts[table.name] = try await Self.count(table.name, connection, logger) }
            return counts
        }
    }

    private static func count(_ table: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int {
        // `table` is one of StoreTable.schema's names, never input.
        var count = 0
        for try await value in try await connection.query("SELECT count(*) FROM \(unescaped: table)", logger: logger).decode(Int64.self) {
            count = Int(value)
        }
        return count
    }

    /// Copies `tables` in one transaction: each table's count is checked before it commits, so a failure or a
    /// mismatch leaves the database as it was. Returns how many rows each table received.
    public func importTables(_ tables: [StoreTable]) async throws -> [(table: String, rows: Int)] {
        for table in tables {
            guard let known = StoreTable.schema.first(where: { $0.name == table.name }), known.columns == table.columns else {
                throw IdentityStoreError.unavailable("table \(table.name) does not match the schema")
            }
        }
        return try await runUnbounded { connection, logger in
            try await connection.transaction(logger: logger) { connection -> [(table: String, rows: Int)] in
                var copied: [(table: String, rows: Int)] = []
                for table in tables {
                    let placeholders = (1...table.columns.count).map { "$\($0)" }.joined(separator: ", ")
                    let sql = "INSERT INTO \(table.name) (\(table.columns.joined(separator: ", "))) VALUES (\(placeholders))"
                    let booleans = table.columns.map { Self.booleanColumns.contains($0) }
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
                    if table.name == "revocations" || table.name == "audit_events" {
                        // Later rows continue after the copied ids. (`table.name` is one of the schema's, never input.)
                        try await connection.query(
                            PostgresQuery(
                                unsafeSQL:
                                    "SELECT setval(pg_get_serial_sequence('\(table.name)', 'id'), GREATEST((SELECT max(id) FROM \(table.name)), 1))"),
                            logger: logger)
                    }
                    let stored = try await Self.count(table.name, connection, logger)
                    guard stored == table.rows.count else {
                        throw IdentityStoreError.unavailable("table \(table.name): copied \(table.rows.count) rows but the database holds \(stored)")
                    }
                    copied.append((table.name, stored))
                }
                return copied
            }
        }
    }
}
