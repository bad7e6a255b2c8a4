import NIOCore
import NIOEmbedded
import Testing
@testable import GatehouseServer

/// The flushes of one turn of the loop leave as one, and nothing is held past the turn or a close.
@Suite struct FlushCoalescingHandlerTests {
    /// Counts what reaches the socket side of the coalescer.
    final class Recorder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var writes = 0
        var flushes = 0
        var flushesBeforeClose: Int?

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            writes += 1
            context.write(data, promise: promise)
        }

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            flushesBeforeClose = flushes
            context.close(mode: mode, promise: promise)
        }
    }

    func channel() throws -> (EmbeddedChannel, Recorder) {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
        return (channel, recorder)
    }

    @Test func theFlushesOfOneTurnLeaveAsOne() throws {
        let (channel, recorder) = try channel()
        for index in 0..<5 {
            channel.write(ByteBuffer(string: "stream \(index)"), promise: nil)
            channel.flush()
        }
        #expect(recorder.writes == 5, "writes pass straight through")
        #expect(recorder.flushes == 0, "the flush waits for the end of the turn")
        channel.embeddedEventLoop.run()
        #expect(recorder.flushes == 1)
        var written = 0
        while try channel.readOutbound(as: ByteBuffer.self) != nil { written += 1 }
        #expect(written == 5)
        // The next turn gets a flush of its own.
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(recorder.flushes == 2)
        _ = try channel.finish()
    }

    @Test func aTurnWithoutAFlushFlushesNothing() throws {
        let (channel, recorder) = try channel()
        channel.write(ByteBuffer(string: "held by TLS until a flush"), promise: nil)
        channel.embeddedEventLoop.run()
        #expect(recorder.flushes == 0)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aCloseFlushesWhatWaitsFirst() throws {
        let (channel, recorder) = try channel()
        channel.write(ByteBuffer(string: "GOAWAY"), promise: nil)
        channel.flush()
        channel.close(promise: nil)
        #expect(recorder.flushesBeforeClose == 1, "a GOAWAY written just before the close still goes out")
        channel.embeddedEventLoop.run()
        #expect(recorder.flushes == 1, "the turn's flush is not repeated")
    }
}
