import Foundation

/// Path helpers: configuration paths are relative to the file that names them.
enum FilePath {
    static func resolve(_ path: String, against directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        return URL(fileURLWithPath: joined).standardizedFileURL.path
    }

    static func directory(of file: String) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path
    }

    static func isReadableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isReadableFile(atPath: path)
    }
}

/// Base64 length check without keeping the decoded secret around.
enum Base64 {
    static func decodedLength(_ text: String) -> Int? {
        Data(base64Encoded: text).map(\.count)
    }
}
