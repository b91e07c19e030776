// An agent app's use of the Kotlin layer, on the JVM, against a real server: the generated
// bindings (through JNA) and Flows.kt, compiled together. Driven by
// mobile-sdk/tests/python/test_kotlin.py, which plays the customer.
//
//   java ... AgentOnTheJvmKt SERVER_URL DATA_DIR EMAIL PASSWORD
//
// It talks to the test in lines: it prints `<step> [value]` on stdout after each step, and reads
// the customer's side (`chat <id>`, `customer-wrote <text>`) from stdin. Every wait is bounded;
// a failure prints `FAIL: ...` on stderr and exits with 1.

import dev.switchboard.sdk.AgentEvent
import dev.switchboard.sdk.AgentUpdate
import dev.switchboard.sdk.ChatEvent
import dev.switchboard.sdk.ChatUpdate
import dev.switchboard.sdk.Client
import dev.switchboard.sdk.ClientConfig
import dev.switchboard.sdk.ConnectionState
import dev.switchboard.sdk.EventListener
import dev.switchboard.sdk.OutgoingState
import dev.switchboard.sdk.SdkException
import dev.switchboard.sdk.Session
import dev.switchboard.sdk.SessionStore
import dev.switchboard.sdk.TaskHandle
import dev.switchboard.sdk.Visitor
import dev.switchboard.sdk.VisitorsListener
import dev.switchboard.sdk.VisitorsUpdate
import dev.switchboard.sdk.agentUpdates
import dev.switchboard.sdk.chatUpdates
import dev.switchboard.sdk.connectionStates
import dev.switchboard.sdk.events
import dev.switchboard.sdk.shutdown
import dev.switchboard.sdk.visitorUpdates
import java.util.Collections
import kotlin.system.exitProcess
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel as CoroutineChannel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull

/** Longest any one step may take. */
const val STEP_MS = 20_000L

class NoSessionStore : SessionStore {
    override fun save(session: Session) {}

    override fun clear() {}
}

/** A Client that keeps the handles `subscribe` returns, to see that cancelling a collector
 * cancels the stream under it. */
class WatchedClient(config: ClientConfig) : Client(config, NoSessionStore()) {
    val subscriptions: MutableList<TaskHandle> = Collections.synchronizedList(mutableListOf())

    override fun subscribe(listener: EventListener): TaskHandle =
        super.subscribe(listener).also { subscriptions.add(it) }
}

/** A Client whose visitors watcher reports a burst of updates before the collector takes any:
 * what `visitorUpdates` keeps of a burst, deterministically. The real watcher it starts only
 * provides the TaskHandle. */
class VisitorsBurstClient(config: ClientConfig, private val burst: (VisitorsListener) -> Unit) :
    Client(config, NoSessionStore()) {
    override fun watchVisitors(listener: VisitorsListener): TaskHandle {
        burst(listener)
        return super.watchVisitors(
            object : VisitorsListener {
                override fun onVisitors(visitors: List<Visitor>) {}

                override fun onConnectionState(state: ConnectionState) {}
            },
        )
    }
}

class Failed(message: String) : Exception(message)

fun step(name: String, value: String = "") {
    println(if (value.isEmpty()) name else "$name $value")
    System.out.flush()
}

/** Lines from the test on stdin, read on a thread of their own so that waits stay bounded. */
val fromTest = CoroutineChannel<String>(CoroutineChannel.UNLIMITED).also { lines ->
    Thread {
        System.`in`.bufferedReader().forEachLine { lines.trySend(it) }
        lines.close()
    }.apply { isDaemon = true }.start()
}

suspend fun expectLine(command: String): String {
    val line = withTimeoutOrNull(STEP_MS) { fromTest.receive() }
        ?: throw Failed("no `$command` line from the test within $STEP_MS ms")
    if (!line.startsWith("$command ")) throw Failed("expected `$command ...` from the test, got `$line`")
    return line.removePrefix("$command ")
}

/** Takes items until one matches; fails with what arrived instead. */
suspend fun <T> CoroutineChannel<T>.awaitMatch(what: String, matches: (T) -> Boolean): T {
    val seen = mutableListOf<T>()
    return withTimeoutOrNull(STEP_MS) {
        var item = receive()
        while (!matches(item)) {
            seen.add(item)
            item = receive()
        }
        item
    } ?: throw Failed("no $what within $STEP_MS ms; received instead: $seen")
}

fun main(args: Array<String>) {
    val (serverUrl, dataDir, email, password) = args
    val outcome = runCatching {
        runBlocking {
            visitorListsConflate("$dataDir/burst")
            agentDay(serverUrl, dataDir, email, password)
        }
    }
    shutdown()
    outcome.onFailure {
        System.err.println("FAIL: $it")
        it.printStackTrace()
        exitProcess(1)
    }
    step("done")
    exitProcess(0)
}

/** `visitorUpdates` drops a list only for a newer one, never across a connection state. */
suspend fun visitorListsConflate(dataDir: String) {
    // Told apart by identity: the lists themselves are equal (empty).
    val lists = List(4) { ArrayList<Visitor>() }
    val client = VisitorsBurstClient(ClientConfig(serverUrl = "http://127.0.0.1:9", dataDir = dataDir)) {
        it.onConnectionState(ConnectionState.Connected)
        it.onVisitors(lists[0])
        it.onVisitors(lists[1])
        it.onConnectionState(ConnectionState.WaitingForNetwork(500UL, "connection reset"))
        it.onConnectionState(ConnectionState.Connected)
        it.onVisitors(lists[2])
        it.onConnectionState(ConnectionState.SignedOut)
        it.onVisitors(lists[3]) // after the end: never seen
    }
    val seen = withTimeout(STEP_MS) { client.visitorUpdates().toList() }.map { update ->
        when (update) {
            is VisitorsUpdate.Visitors -> "list${lists.indexOfFirst { it === update.visitors }}"
            is VisitorsUpdate.Connection -> update.state::class.simpleName
        }
    }
    val expected = listOf("Connected", "list1", "WaitingForNetwork", "Connected", "list2", "SignedOut")
    if (seen != expected) throw Failed("visitorUpdates of a burst: $seen, expected $expected")
    client.close()
    step("visitors-conflated")
}

suspend fun CoroutineScope.agentDay(serverUrl: String, dataDir: String, email: String, password: String) {
    val client = WatchedClient(ClientConfig(serverUrl = serverUrl, dataDir = dataDir))

    // A wrong password is its own exception type: no text to compare.
    try {
        withTimeout(STEP_MS) { client.login(email, "not-the-password") }
        throw Failed("login with a wrong password succeeded")
    } catch (e: SdkException.Unauthenticated) {
        step("unauthenticated")
    }
    val agent = withTimeout(STEP_MS) { client.login(email, password) }
    step("signed-in", agent.id)

    // The agent's stream, collected in a coroutine of its own until cancelled.
    val updates = CoroutineChannel<AgentUpdate>(CoroutineChannel.UNLIMITED)
    val collecting = launch(Dispatchers.Default) { client.agentUpdates().collect { updates.send(it) } }
    updates.awaitMatch("CONNECTED") { it == AgentUpdate.Connection(ConnectionState.Connected) }
    step("connected")

    // The customer starts a chat; it is assigned to this agent.
    val chatId = expectLine("chat")
    val assigned = updates.awaitMatch("ChatAssigned for $chatId") {
        it is AgentUpdate.Event && it.event is AgentEvent.ChatAssigned &&
            it.event.chat.id == chatId
    }
    val opening = ((assigned as AgentUpdate.Event).event as AgentEvent.ChatAssigned).chat.lastMessage?.text
    step("assigned", opening ?: "")

    // A reply through the outbox: PENDING at once, SENT through the flow.
    val reply = "Hello from Kotlin"
    val pending = client.sendMessage(chatId, reply)
    if (pending.state != OutgoingState.PENDING) throw Failed("sendMessage returned $pending")
    val sent = updates.awaitMatch("Outgoing SENT for ${pending.clientId}") {
        it is AgentUpdate.Outgoing && it.message.clientId == pending.clientId &&
            it.message.state != OutgoingState.PENDING
    } as AgentUpdate.Outgoing
    if (sent.message.state != OutgoingState.SENT || sent.message.message?.text != reply) {
        throw Failed("the reply was not sent: ${sent.message}")
    }
    // Records are values: a changed copy, the original untouched.
    val edited = sent.message.copy(text = "changed")
    if (sent.message.text != reply || edited.text != "changed") throw Failed("copy changed the original")
    step("sent", pending.clientId)

    // The chat alone: its transcript replayed from the start, then what the customer writes.
    val chatUpdates = CoroutineChannel<ChatUpdate>(CoroutineChannel.UNLIMITED)
    val following = launch(Dispatchers.Default) { client.chatUpdates(chatId).collect { chatUpdates.send(it) } }
    chatUpdates.awaitMatch("the reply replayed in chatUpdates") {
        it is ChatUpdate.Event && it.event is ChatEvent.MessageAdded &&
            it.event.message.clientId == pending.clientId
    }
    step("following")
    val customerText = expectLine("customer-wrote")
    chatUpdates.awaitMatch("the customer's message in chatUpdates") {
        it is ChatUpdate.Event && it.event is ChatEvent.MessageAdded &&
            it.event.message.text == customerText
    }
    following.cancelAndJoin()
    step("customer-message-seen")

    // A chat the server refuses ends its flow with the refusal's exception type.
    try {
        withTimeout(STEP_MS) { client.chatUpdates("no-such-chat").toList() }
        throw Failed("chatUpdates for an unknown chat completed without an error")
    } catch (e: SdkException.NotFound) {
        step("not-found", e.msg)
    }

    // Cancelling the collector cancels the subscription under it.
    val subscription = client.subscriptions.single()
    if (subscription.isFinished()) throw Failed("the subscription stopped before its collector")
    collecting.cancelAndJoin()
    val stopped = withTimeoutOrNull(STEP_MS) {
        while (!subscription.isFinished()) delay(20)
        true
    }
    if (stopped != true) throw Failed("the subscription still runs after its collector was cancelled")
    step("cancelled")

    // The visitors watcher, and every flow ending after SIGNED_OUT when the agent signs out.
    val states = async(Dispatchers.Default) { withTimeout(STEP_MS) { client.agentUpdates().connectionStates().toList() } }
    val visitors = async(Dispatchers.Default) { withTimeout(STEP_MS) { client.visitorUpdates().toList() } }
    val events = async(Dispatchers.Default) { withTimeout(STEP_MS) { client.agentUpdates().events().toList() } }
    withTimeout(STEP_MS) {
        while (client.subscriptions.size < 3) delay(20)
    }
    // Wait until the new streams are live before signing out.
    val live = withTimeoutOrNull(STEP_MS) {
        client.visitorUpdates().first { it is VisitorsUpdate.Visitors }
    } ?: throw Failed("visitorUpdates delivered no list")
    withTimeout(STEP_MS) { client.logout() }
    val ended = states.await()
    if (ended.lastOrNull() != ConnectionState.SignedOut) throw Failed("agentUpdates ended with $ended")
    val watched = visitors.await()
    if (watched.last() != VisitorsUpdate.Connection(ConnectionState.SignedOut)) {
        throw Failed("visitorUpdates ended with $watched")
    }
    events.await()
    step("signed-out", "${(live as VisitorsUpdate.Visitors).visitors.size} ${ended.joinToString(",") { it::class.simpleName ?: "?" }}")
}
