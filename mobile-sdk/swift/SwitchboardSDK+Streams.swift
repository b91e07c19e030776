// Swift concurrency over the SDK's listeners: `AsyncStream`s for the event stream, one chat
// and the visitors on the site, each carrying its connection state. UniFFI already makes every
// request an `async throws` method; what it cannot generate is a stream, so this file wraps the
// callback interfaces. It ships beside the generated `SwitchboardSDK.swift` (bindgen.sh and
// package.sh copy it there) and uses nothing but the generated types and the standard library.
//
//     for await update in client.agentUpdates() {
//         switch update {
//         case .event(let event): model.apply(event)
//         case .connection(let state): model.connection = state
//         case .outgoing(let message): model.outbox.update(message)
//         }
//     }
//
// A stream starts its subscription when it is created and stops it when the loop ends, the
// task iterating it is cancelled, or the stream is dropped. Its buffer is unbounded: the SDK
// delivers every kept event exactly once and in order, and a stream never drops one because the
// app was slow to read it.

import Foundation

/// One thing the agent's event stream reports: an event, a change of the connection, or the
/// fate of a message sent with `sendMessage` (SENT or FAILED).
public enum AgentUpdate: Equatable, Hashable {
    case event(AgentEvent)
    case connection(ConnectionState)
    case outgoing(OutgoingMessage)
}

/// One thing a followed chat reports: an entry of its transcript (or a live change), or a
/// change of the connection.
public enum ChatUpdate: Equatable, Hashable {
    case event(ChatEvent)
    case connection(ConnectionState)
}

/// The visitors on the site: the whole list, longest there first, or a change of the
/// connection. Show the last list you were given.
public enum VisitorsUpdate: Equatable, Hashable {
    case visitors([Visitor])
    case connection(ConnectionState)
}

#if compiler(>=6)
extension AgentUpdate: Sendable {}
extension ChatUpdate: Sendable {}
extension VisitorsUpdate: Sendable {}
#endif

extension Client {
    /// The agent's events, live, resuming after every disconnect from the last one delivered
    /// (see `subscribe`). The stream finishes after `.connection(.signedOut)`: the session has
    /// ended and nothing more will come.
    public func agentUpdates() -> AsyncStream<AgentUpdate> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let handle = subscribe(listener: AgentUpdateRelay(continuation))
            continuation.onTermination = { _ in handle.cancel() }
        }
    }

    /// One chat, live: its transcript after `since` (a cursor from an earlier entry, or `nil`
    /// for the whole of it), then every new entry (see `chatEvents`). The stream throws the
    /// server's refusal as an `SdkError` (`.NotFound` for a chat the agent may not see,
    /// `.Forbidden`, `.BadInput` for a cursor the server does not know) and finishes after
    /// `.connection(.signedOut)`.
    public func chatUpdates(chatId: String, since: String? = nil)
        -> AsyncThrowingStream<ChatUpdate, Error>
    {
        AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
            let handle = chatEvents(
                chatId: chatId, since: since, listener: ChatUpdateRelay(continuation))
            continuation.onTermination = { _ in handle.cancel() }
        }
    }

    /// The visitors on the site (see `watchVisitors`): the whole list at once and after every
    /// change. Finishes after `.connection(.signedOut)`.
    public func visitorUpdates() -> AsyncStream<VisitorsUpdate> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let handle = watchVisitors(listener: VisitorsUpdateRelay(continuation))
            continuation.onTermination = { _ in handle.cancel() }
        }
    }
}

extension AsyncStream where Element == AgentUpdate {
    /// Only the events.
    public func events() -> AsyncCompactMapSequence<Self, AgentEvent> {
        compactMap { update in
            if case .event(let event) = update { return event }
            return nil
        }
    }

    /// Only the connection states.
    public func connectionStates() -> AsyncCompactMapSequence<Self, ConnectionState> {
        compactMap { update in
            if case .connection(let state) = update { return state }
            return nil
        }
    }
}

extension ErrorCode {
    /// The `SdkError` of this kind carrying `message`: how a refusal reported as a code (a
    /// chat stream's, an outgoing message's `errorCode`) becomes an error to throw. A rate
    /// limit reported this way names no delay; it waits the SDK's default of one second.
    public func error(message: String) -> SdkError {
        switch self {
        case .unauthenticated: return .Unauthenticated(msg: message)
        case .forbidden: return .Forbidden(msg: message)
        case .notFound: return .NotFound(msg: message)
        case .badInput: return .BadInput(msg: message)
        case .conflict: return .Conflict(msg: message)
        case .rateLimited: return .RateLimited(retryAfterSecs: 1, msg: message)
        case .agentsOffline: return .AgentsOffline(msg: message)
        case .banned: return .Banned(msg: message)
        case .messengerWindowClosed: return .MessengerWindowClosed(msg: message)
        case .emailNotConfigured: return .EmailNotConfigured(msg: message)
        case .fileTooLarge: return .FileTooLarge(msg: message)
        case .fileTypeNotAllowed: return .FileTypeNotAllowed(msg: message)
        case .network: return .Network(msg: message)
        case .incompatible: return .Incompatible(msg: message)
        case .storage: return .Storage(msg: message)
        case .server: return .Server(msg: message)
        }
    }
}

// The listeners are called on the SDK's threads; a continuation may be used from any thread.

private final class AgentUpdateRelay: EventListener, @unchecked Sendable {
    private let continuation: AsyncStream<AgentUpdate>.Continuation

    init(_ continuation: AsyncStream<AgentUpdate>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: AgentEvent) {
        continuation.yield(.event(event))
    }

    func onConnectionState(state: ConnectionState) {
        continuation.yield(.connection(state))
        if case .signedOut = state {
            continuation.finish()
        }
    }

    func onOutgoingMessage(message: OutgoingMessage) {
        continuation.yield(.outgoing(message))
    }
}

private final class ChatUpdateRelay: ChatEventListener, @unchecked Sendable {
    private let continuation: AsyncThrowingStream<ChatUpdate, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<ChatUpdate, Error>.Continuation) {
        self.continuation = continuation
    }

    func onChatEvent(event: ChatEvent) {
        continuation.yield(.event(event))
    }

    func onConnectionState(state: ConnectionState) {
        continuation.yield(.connection(state))
        if case .signedOut = state {
            continuation.finish()
        }
    }

    func onRefused(code: ErrorCode, message: String) {
        continuation.finish(throwing: code.error(message: message))
    }
}

private final class VisitorsUpdateRelay: VisitorsListener, @unchecked Sendable {
    private let continuation: AsyncStream<VisitorsUpdate>.Continuation

    init(_ continuation: AsyncStream<VisitorsUpdate>.Continuation) {
        self.continuation = continuation
    }

    func onVisitors(visitors: [Visitor]) {
        continuation.yield(.visitors(visitors))
    }

    func onConnectionState(state: ConnectionState) {
        continuation.yield(.connection(state))
        if case .signedOut = state {
            continuation.finish()
        }
    }
}
