// The SDK's live streams as Kotlin Flows. Hand-written beside the generated
// switchboard_sdk.kt (mobile-sdk/bindgen.sh copies both); it only adapts the listeners
// (EventListener, ChatEventListener, VisitorsListener) to coroutines and holds no logic of the
// SDK's own.
//
// Threads: the SDK calls listeners on its own threads. Each callback is handed over with
// `trySend` (never blocking an SDK thread), so a collector runs on whatever dispatcher it
// collects on (Dispatchers.Main in a ViewModel, Dispatchers.Default elsewhere).
//
// Lifetime: every flow is cold. Collecting it starts one stream (`subscribe`, `chatEvents`,
// `watchVisitors`); cancelling the collector cancels that stream's TaskHandle. Each flow
// completes after it emits ConnectionState.SignedOut, which is final.

package dev.switchboard.sdk

import java.util.ArrayDeque
// Aliased: this package has a `Channel` of its own (a chat's channel: web, email, ...).
import kotlinx.coroutines.channels.Channel as CoroutineChannel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.map

/** What the agent's event stream reports: one of EventListener's three callbacks. */
sealed interface AgentUpdate {
    /** `EventListener.onEvent`: an event, delivered once and in order. */
    data class Event(val event: AgentEvent) : AgentUpdate

    /** `EventListener.onConnectionState`; `SignedOut` is the last update of the flow. */
    data class Connection(val state: ConnectionState) : AgentUpdate

    /** `EventListener.onOutgoingMessage`: a message from the outbox was SENT or FAILED. */
    data class Outgoing(val message: OutgoingMessage) : AgentUpdate
}

/** What one chat's stream reports: one of ChatEventListener's callbacks but `onRefused`. */
sealed interface ChatUpdate {
    /** `ChatEventListener.onChatEvent`: transcript entries in order, typing, queue position. */
    data class Event(val event: ChatEvent) : ChatUpdate

    /** `ChatEventListener.onConnectionState`; `SignedOut` is the last update of the flow. */
    data class Connection(val state: ConnectionState) : ChatUpdate
}

/** What the visitors watcher reports: one of VisitorsListener's callbacks. */
sealed interface VisitorsUpdate {
    /** Everyone on the site now, longest there first: show it instead of the last list. */
    data class Visitors(val visitors: List<Visitor>) : VisitorsUpdate

    /** `VisitorsListener.onConnectionState`; `SignedOut` is the last update of the flow. */
    data class Connection(val state: ConnectionState) : VisitorsUpdate
}

/**
 * The agent's live event stream (`subscribe`) as a cold Flow.
 *
 * Nothing is dropped or conflated: the buffer is unlimited, because events are exactly-once
 * (the SDK moves its stored cursor past an event once it has handed it over) and a missed
 * `Outgoing` would leave a bubble pending. Updates still in the buffer when the collector is
 * cancelled are gone for good, so collect for as long as the app wants events (a scope that
 * outlives single screens), not per screen.
 *
 * Completes after emitting `Connection(ConnectionState.SignedOut)`.
 */
fun Client.agentUpdates(): Flow<AgentUpdate> =
    callbackFlow {
        val handle = subscribe(
            object : EventListener {
                override fun onEvent(event: AgentEvent) {
                    trySend(AgentUpdate.Event(event))
                }

                override fun onConnectionState(state: ConnectionState) {
                    trySend(AgentUpdate.Connection(state))
                    if (state is ConnectionState.SignedOut) channel.close()
                }

                override fun onOutgoingMessage(message: OutgoingMessage) {
                    trySend(AgentUpdate.Outgoing(message))
                }
            },
        )
        awaitClose { handle.cancel() }
    }.buffer(CoroutineChannel.UNLIMITED)

/** Only the events of [agentUpdates]. */
fun Flow<AgentUpdate>.events(): Flow<AgentEvent> =
    filterIsInstance<AgentUpdate.Event>().map { it.event }

/** Only the connection states of [agentUpdates] (for a "reconnecting…" banner). */
fun Flow<AgentUpdate>.connectionStates(): Flow<ConnectionState> =
    filterIsInstance<AgentUpdate.Connection>().map { it.state }

/**
 * One chat live (`chatEvents`) as a cold Flow: each transcript entry after [since] (all of them
 * when null), then each new one, typing and the queue position. Unlimited buffer, as for
 * [agentUpdates]: transcript entries are never dropped.
 *
 * When the server refuses the chat (`onRefused`) the flow fails with that refusal's
 * [SdkException] (`NotFound`, `Forbidden`, `BadInput` for a cursor it does not know); see
 * [toException]. Completes after emitting `Connection(ConnectionState.SignedOut)`.
 */
fun Client.chatUpdates(chatId: String, since: String? = null): Flow<ChatUpdate> =
    callbackFlow {
        val handle = chatEvents(
            chatId,
            since,
            object : ChatEventListener {
                override fun onChatEvent(event: ChatEvent) {
                    trySend(ChatUpdate.Event(event))
                }

                override fun onConnectionState(state: ConnectionState) {
                    trySend(ChatUpdate.Connection(state))
                    if (state is ConnectionState.SignedOut) channel.close()
                }

                override fun onRefused(code: ErrorCode, message: String) {
                    channel.close(code.toException(message))
                }
            },
        )
        awaitClose { handle.cancel() }
    }.buffer(CoroutineChannel.UNLIMITED)

/**
 * The visitors on the site (`watchVisitors`) as a cold Flow.
 *
 * Only the latest list matters, so a list the collector has not taken yet is replaced by a
 * newer one. Connection states are never conflated away, and a list never jumps over a state:
 * a list that arrived before `WaitingForNetwork` is only replaced by one that arrived before it
 * too, so the order of what the collector sees is the order the SDK reported, minus stale lists.
 * (A plain CONFLATED channel would lose a `SignedOut` or a `WaitingForNetwork` behind the next
 * list; an unlimited one would make a slow collector show every outdated list in turn.)
 *
 * Completes after emitting `Connection(ConnectionState.SignedOut)`.
 */
fun Client.visitorUpdates(): Flow<VisitorsUpdate> =
    flow {
        val pending = LatestVisitors()
        val handle = watchVisitors(pending)
        try {
            while (true) {
                for (update in pending.take()) {
                    emit(update)
                    if (update is VisitorsUpdate.Connection &&
                        update.state is ConnectionState.SignedOut
                    ) {
                        return@flow
                    }
                }
            }
        } finally {
            handle.cancel()
        }
    }

/**
 * The exception an [ErrorCode] stands for, with [message] as its text: how a refusal that
 * arrives as a code (`ChatEventListener.onRefused`, `OutgoingMessage.errorCode`) becomes the
 * same typed [SdkException] a call throws. A code carries no delay, so `RateLimited` gets the
 * SDK's default wait, `retryAfterSecs = 1`.
 */
fun ErrorCode.toException(message: String): SdkException =
    when (this) {
        ErrorCode.UNAUTHENTICATED -> SdkException.Unauthenticated(message)
        ErrorCode.FORBIDDEN -> SdkException.Forbidden(message)
        ErrorCode.NOT_FOUND -> SdkException.NotFound(message)
        ErrorCode.BAD_INPUT -> SdkException.BadInput(message)
        ErrorCode.CONFLICT -> SdkException.Conflict(message)
        ErrorCode.RATE_LIMITED -> SdkException.RateLimited(1UL, message)
        ErrorCode.AGENTS_OFFLINE -> SdkException.AgentsOffline(message)
        ErrorCode.BANNED -> SdkException.Banned(message)
        ErrorCode.MESSENGER_WINDOW_CLOSED -> SdkException.MessengerWindowClosed(message)
        ErrorCode.EMAIL_NOT_CONFIGURED -> SdkException.EmailNotConfigured(message)
        ErrorCode.FILE_TOO_LARGE -> SdkException.FileTooLarge(message)
        ErrorCode.FILE_TYPE_NOT_ALLOWED -> SdkException.FileTypeNotAllowed(message)
        ErrorCode.NETWORK -> SdkException.Network(message)
        ErrorCode.INCOMPATIBLE -> SdkException.Incompatible(message)
        ErrorCode.STORAGE -> SdkException.Storage(message)
        ErrorCode.SERVER -> SdkException.Server(message)
    }

/**
 * The visitors listener behind [visitorUpdates]: the SDK's threads add updates, the collector
 * takes them all at once. A new list replaces the last queued update when that is a list (not
 * yet taken, and no state after it); anything else is appended.
 */
private class LatestVisitors : VisitorsListener {
    private val queue = ArrayDeque<VisitorsUpdate>()

    /** Holds at most one signal: an update arrived since the collector last looked. */
    private val arrived = CoroutineChannel<Unit>(CoroutineChannel.CONFLATED)

    override fun onVisitors(visitors: List<Visitor>) {
        synchronized(queue) {
            if (queue.peekLast() is VisitorsUpdate.Visitors) queue.pollLast()
            queue.addLast(VisitorsUpdate.Visitors(visitors))
        }
        arrived.trySend(Unit)
    }

    override fun onConnectionState(state: ConnectionState) {
        synchronized(queue) { queue.addLast(VisitorsUpdate.Connection(state)) }
        arrived.trySend(Unit)
    }

    /** Everything queued, oldest first; suspends while nothing is. */
    suspend fun take(): List<VisitorsUpdate> {
        while (true) {
            synchronized(queue) {
                if (queue.isNotEmpty()) {
                    return ArrayList(queue).also { queue.clear() }
                }
            }
            arrived.receive()
        }
    }
}
