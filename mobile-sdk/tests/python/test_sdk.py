"""The agent SDK through its generated Python bindings, against the real server.

The agent side goes only through `switchboard_sdk`; the customer side (which has no SDK) posts
GraphQL over HTTP. Every wait is bounded and fails with what was seen instead.
"""

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid

import pytest

ASSIGNMENT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 15.0
SEND_TIMEOUT = 15.0


class RecordingSessionStore:
    """A SessionStore that remembers every call (it is called on SDK threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.saved = []
        self.cleared = 0

    def save(self, session):
        with self._lock:
            self.saved.append(session)

    def clear(self):
        with self._lock:
            self.cleared += 1

    def snapshot(self):
        with self._lock:
            return list(self.saved), self.cleared


class RecordingListener:
    """An EventListener that hands each callback to the test thread through queues."""

    def __init__(self):
        self.events = queue.Queue()
        self.states = queue.Queue()
        self.outgoing = queue.Queue()

    def on_event(self, event):
        self.events.put(event)

    def on_connection_state(self, state):
        self.states.put(state)

    def on_outgoing_message(self, message):
        self.outgoing.put(message)


def wait_for(source, matches, timeout, what):
    """Takes items from `source` until one `matches`; fails after `timeout` seconds, listing
    what arrived instead. Returns the matching item and those before it."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            listed = "\n  ".join(str(item) for item in seen) or "(nothing)"
            pytest.fail(f"no {what} within {timeout:.0f} s; received instead:\n  {listed}")
        try:
            item = source.get(timeout=left)
        except queue.Empty:
            continue
        if matches(item):
            return item, seen
        seen.append(item)


def new_client(sdk, server_url, data_dir, store=None):
    store = store if store is not None else RecordingSessionStore()
    config = sdk.ClientConfig(server_url=server_url, data_dir=str(data_dir))
    return sdk.Client(config, store), store


def start_customer_chat(server, text):
    """A visitor opens the widget and starts a chat; returns (visitor token, chat)."""
    session = server.graphql(
        'mutation($k: String!) { startVisitorSession(input: {widgetKey: $k, name: "Ada"}) { token } }',
        {"k": server.widget_key},
    )["startVisitorSession"]
    token = session["token"]
    chat = server.graphql(
        "mutation($m: String!) { startChat(input: {message: $m}) { id status } }",
        {"m": text},
        token=token,
    )["startChat"]
    return token, chat


def wait_connected(listener):
    """Waits until the client's stream says it is connected."""
    wait_for(
        listener.states,
        lambda state: state.is_connected(),
        CONNECT_TIMEOUT,
        "ConnectionState.CONNECTED",
    )


def assigned_chat(server, listener, text):
    """A customer starts a chat with `text`; waits until it is assigned to the listening agent.
    Returns (visitor token, chat id)."""
    visitor_token, chat = start_customer_chat(server, text)
    chat_id = chat["id"]
    wait_for(
        listener.events,
        lambda e: e.is_chat_assigned() and e.chat.id == chat_id,
        ASSIGNMENT_TIMEOUT,
        f"AgentEvent.CHAT_ASSIGNED for chat {chat_id}",
    )
    return visitor_token, chat_id


def delivered(sdk, listener, outgoing):
    """Waits until the outbox has delivered `outgoing`; returns the message the server made."""
    sent, _ = wait_for(
        listener.outgoing,
        lambda m: m.client_id == outgoing.client_id and m.state != sdk.OutgoingState.PENDING,
        SEND_TIMEOUT,
        f"on_outgoing_message for {outgoing.client_id}",
    )
    assert sent.state == sdk.OutgoingState.SENT, sent
    return sent.message


def test_login_assignment_and_sending_a_message(sdk, server, run, tmp_path):
    client, store = new_client(sdk, server.base_url, tmp_path / "agent")

    # 1. Login: the agent, and the session handed to the app's store.
    agent = run(client.login(server.email, server.password))
    assert agent.email == server.email
    saved, cleared = store.snapshot()
    assert saved, "login did not call SessionStore.save"
    assert cleared == 0, "login called SessionStore.clear"
    assert saved[-1].agent_id == agent.id, (saved[-1], agent)
    assert saved[-1].email == server.email
    assert saved[-1].access_token and saved[-1].refresh_token
    assert client.session() == saved[-1]
    assert run(client.me()).id == agent.id

    # 2. The live stream: connected, then a customer's new chat is assigned to the owner.
    listener = RecordingListener()
    handle = client.subscribe(listener)
    try:
        wait_connected(listener)
        assert not handle.is_finished()

        visitor_token, chat = start_customer_chat(server, "Hello")
        chat_id = chat["id"]
        event, _ = wait_for(
            listener.events,
            lambda e: e.is_chat_assigned() and e.chat.id == chat_id,
            ASSIGNMENT_TIMEOUT,
            f"AgentEvent.CHAT_ASSIGNED for chat {chat_id}",
        )
        assert event.cursor, event
        assert chat_id in [c.id for c in run(client.my_chats())]

        # 3. Sending: PENDING at once, SENT through the listener, on the server exactly once.
        text = "Hi Ada, how can I help?"
        outgoing = client.send_message(chat_id, text)
        assert outgoing.state == sdk.OutgoingState.PENDING, outgoing
        assert outgoing.chat_id == chat_id
        assert outgoing.text == text
        assert outgoing.client_id
        assert outgoing.message is None

        sent, _ = wait_for(
            listener.outgoing,
            lambda m: m.client_id == outgoing.client_id and m.state != sdk.OutgoingState.PENDING,
            SEND_TIMEOUT,
            f"on_outgoing_message for {outgoing.client_id}",
        )
        assert sent.state == sdk.OutgoingState.SENT, sent
        assert sent.error_code is None, sent
        assert sent.message is not None, sent
        assert sent.message.client_id == outgoing.client_id, sent.message
        assert sent.message.chat_id == chat_id
        assert sent.message.text == text
        assert all(m.client_id != outgoing.client_id for m in client.outbox()), client.outbox()

        transcript = server.graphql(
            "query($id: ID!) { chat(id: $id) { events(first: 100) { items { text clientId } } } }",
            {"id": chat_id},
            token=visitor_token,
        )["chat"]["events"]["items"]
        copies = [item for item in transcript if item["clientId"] == outgoing.client_id]
        assert copies == [{"text": text, "clientId": outgoing.client_id}], transcript
    finally:
        handle.cancel()


def test_canned_response_created_found_rendered_and_sent(sdk, server, run, tmp_path):
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    listener = RecordingListener()
    handle = client.subscribe(listener)
    try:
        wait_connected(listener)
        created = run(
            client.create_canned_response(
                sdk.CannedResponseInput(
                    shortcut="#PyShip",
                    title="Shipping times",
                    text="Hi {{ customer.first_name }}, parcels leave within 2 days.",
                    scope=sdk.CannedResponseScope.ORGANIZATION,
                    group_id=None,
                )
            )
        )
        assert created.shortcut == "pyship", created
        assert created.scope == sdk.CannedResponseScope.ORGANIZATION
        assert created.usage_count == 0

        found = run(client.canned_responses("#pysh", 8))
        assert [r.id for r in found] == [created.id], found

        with pytest.raises(sdk.SdkError.BadInput) as refused:
            run(
                client.create_canned_response(
                    sdk.CannedResponseInput(
                        shortcut="bad",
                        title="Bad",
                        text="Hi {{customer.nickname}}",
                        scope=sdk.CannedResponseScope.PERSONAL,
                        group_id=None,
                    )
                )
            )
        assert "customer.nickname" in refused.value.msg, refused.value

        visitor_token, chat = start_customer_chat(server, "When will my parcel ship?")
        chat_id = chat["id"]
        wait_for(
            listener.events,
            lambda e: e.is_chat_assigned() and e.chat.id == chat_id,
            ASSIGNMENT_TIMEOUT,
            f"AgentEvent.CHAT_ASSIGNED for chat {chat_id}",
        )
        text = run(client.render_canned_response(created.id, chat_id))
        assert text == "Hi Ada, parcels leave within 2 days.", text

        outgoing = client.send_canned_response(chat_id, text, created.id)
        assert outgoing.state == sdk.OutgoingState.PENDING, outgoing
        assert outgoing.canned_response_id == created.id
        sent, _ = wait_for(
            listener.outgoing,
            lambda m: m.client_id == outgoing.client_id and m.state != sdk.OutgoingState.PENDING,
            SEND_TIMEOUT,
            f"on_outgoing_message for {outgoing.client_id}",
        )
        assert sent.state == sdk.OutgoingState.SENT, sent
        transcript = server.graphql(
            "query($id: ID!) { chat(id: $id) { events(first: 100) { items { text } } } }",
            {"id": chat_id},
            token=visitor_token,
        )["chat"]["events"]["items"]
        assert {"text": text} in transcript, transcript
        assert run(client.canned_responses("pyship", 1))[0].usage_count == 1

        assert run(client.delete_canned_response(created.id)) is True
        assert run(client.canned_responses("#pyship", 8)) == []
    finally:
        handle.cancel()


PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"


def test_a_file_uploaded_sent_and_downloaded(sdk, server, run, tmp_path):
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    listener = RecordingListener()
    handle = client.subscribe(listener)
    try:
        wait_connected(listener)
        visitor_token, chat_id = assigned_chat(server, listener, "Can you send me a picture?")
        uploaded = run(client.upload_file(chat_id, PNG, "mug.png", "image/png"))
        assert uploaded.is_image and uploaded.size == len(PNG), uploaded
        with pytest.raises(sdk.SdkError.FileTypeNotAllowed):
            run(client.upload_file(chat_id, b"MZ", "tool.exe", "application/x-msdownload"))

        outgoing = client.send_files(chat_id, "", [uploaded.id])
        assert outgoing.file_ids == [uploaded.id], outgoing
        attachment = delivered(sdk, listener, outgoing).attachments[0]
        assert (attachment.name, attachment.content_type) == ("mug.png", "image/png")
        url = client.file_url(attachment.url)
        with urllib.request.urlopen(url) as response:
            assert response.read() == PNG
        transcript = server.graphql(
            "query($id: ID!) { chat(id: $id) { events(first: 100) { items { attachments { id } } } } }",
            {"id": chat_id},
            token=visitor_token,
        )["chat"]["events"]["items"]
        assert {"attachments": [{"id": uploaded.id}]} in transcript, transcript
    finally:
        handle.cancel()


def test_note_never_reaches_the_customer_and_tags_and_teammates_setting(sdk, server, run, tmp_path):
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    listener = RecordingListener()
    handle = client.subscribe(listener)
    try:
        wait_connected(listener)
        visitor_token, chat_id = assigned_chat(server, listener, "Is my order on its way?")

        note = client.send_note(chat_id, "Python note: a VIP, agents only")
        assert note.is_note, note
        sent_note = delivered(sdk, listener, note)
        assert sent_note.visibility == sdk.Visibility.AGENTS, sent_note
        reply = client.send_message(chat_id, "Python reply: it ships today")
        assert not reply.is_note, reply
        assert delivered(sdk, listener, reply).visibility == sdk.Visibility.PUBLIC

        seen = server.graphql(
            """query($id: ID!) { chat(id: $id) {
                lastMessage { text }
                events(first: 100) { items { text visibility } }
                latestEvents(last: 100) { items { text visibility } } } }""",
            {"id": chat_id},
            token=visitor_token,
        )["chat"]
        items = seen["events"]["items"] + seen["latestEvents"]["items"]
        assert {"text": "Python reply: it ships today", "visibility": "PUBLIC"} in items, items
        assert all(item["visibility"] == "PUBLIC" for item in items), items
        assert not any("Python note" in item["text"] for item in items), items
        assert seen["lastMessage"]["text"] == "Python reply: it ships today", seen

        tag = run(client.create_tag(sdk.TagInput(name=" PyVIP ", color="#D0A01A")))
        assert (tag.name, tag.color) == ("PyVIP", "#d0a01a"), tag
        assert tag.id in [t.id for t in run(client.tags())]
        with pytest.raises(sdk.SdkError.Conflict):
            run(client.create_tag(sdk.TagInput(name="pyvip", color=None)))
        assert [t.name for t in run(client.add_chat_tag(chat_id, tag.id))] == ["PyVIP"]
        assert [t.id for t in run(client.chat_tags(chat_id))] == [tag.id]
        assert run(client.remove_chat_tag(chat_id, tag.id)) == []
        assert run(client.delete_tag(tag.id)) is True

        assert run(client.agents_see_group_chats()) is False
        assert run(client.set_agents_see_group_chats(True)) is True
        assert run(client.agents_see_group_chats()) is True
        assert run(client.set_agents_see_group_chats(False)) is False
        assert chat_id in [c.id for c in run(client.team_chats())]
    finally:
        handle.cancel()


def test_a_chat_sent_to_an_integration_shows_delivered(sdk, server, run, tmp_path):
    import http.server
    import json

    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    listener = RecordingListener()
    handle = client.subscribe(listener)
    try:
        wait_connected(listener)
        _, chat_id = assigned_chat(server, listener, "Please open a ticket")
        port = httpd.server_address[1]
        created = server.graphql(
            """mutation($u: String!) { createWebhookEndpoint(input: {url: $u, events: ["chat.closed"],
                kind: INTEGRATION, description: "Py Tickets"}) { endpoint { id } } }""",
            {"u": f"http://127.0.0.1:{port}/tickets"},
            token=client.session().access_token,
        )["createWebhookEndpoint"]["endpoint"]
        integrations = run(client.integrations())
        assert sdk.Integration(id=created["id"], name="Py Tickets") in integrations, integrations
        sent = run(client.send_chat_to_integration(chat_id, created["id"]))
        assert sent.integration_id == created["id"], sent
        deadline = time.monotonic() + 15
        while True:
            sends = run(client.chat_integration_sends(chat_id))
            if sends and sends[0].status == sdk.IntegrationSendStatus.DELIVERED:
                break
            assert time.monotonic() < deadline, sends
            time.sleep(0.1)
        assert sends[0].id == sent.id and sends[0].response_status == 204, sends
        headers, document = received[-1]
        assert document["type"] == "chat.sent_to_integration", document
        assert document["data"]["chat"]["id"] == chat_id, document
        assert headers["webhook-signature"].startswith("v1,"), headers
    finally:
        handle.cancel()
        httpd.shutdown()


def test_wrong_password_is_unauthenticated(sdk, server, run, tmp_path):
    client, store = new_client(sdk, server.base_url, tmp_path / "agent")
    with pytest.raises(sdk.SdkError.Unauthenticated):
        run(client.login(server.email, "not-the-password"))
    assert store.snapshot() == ([], 0)
    assert client.session() is None


def test_empty_message_is_refused_before_sending(sdk, server, run, tmp_path):
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    for text in ["", "   "]:
        with pytest.raises(sdk.SdkError.BadInput):
            client.send_message("some-chat", text)
    assert client.outbox() == []


def test_offline_messages_list_with_replies_and_a_reply_needs_smtp(sdk, server, run, tmp_path):
    # This suite's server has no SMTP server: the message is listed, a reply says why it cannot
    # go out, and empty text is refused before any request.
    token = server.graphql(
        'mutation($k: String!) { startVisitorSession(input: {widgetKey: $k, name: "Ola"}) { token } }',
        {"k": server.widget_key},
    )["startVisitorSession"]["token"]
    left = server.graphql(
        'mutation { leaveOfflineMessage(input: {name: "Ola", email: "ola@customer.test", '
        'text: "Please write back"}) { id } }',
        token=token,
    )["leaveOfflineMessage"]["id"]
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    threads = run(client.offline_messages())
    thread = next(t for t in threads if t.message.id == left)
    assert thread.message.email == "ola@customer.test"
    assert thread.message.handled is False
    assert thread.replies == []
    with pytest.raises(sdk.SdkError.BadInput):
        run(client.reply_to_offline_message(left, "   "))
    with pytest.raises(sdk.SdkError.EmailNotConfigured) as refused:
        run(client.reply_to_offline_message(left, "We will write back"))
    assert "SWITCHBOARD_SMTP_HOST" in refused.value.msg


def test_unreachable_server_is_a_network_error(sdk, run, tmp_path):
    client, store = new_client(sdk, "http://127.0.0.1:1", tmp_path / "agent")
    with pytest.raises(sdk.SdkError.Network):
        run(client.login("owner@example.com", "whatever-password"))
    assert store.snapshot() == ([], 0)


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com"])
def test_invalid_server_url_is_bad_user_input(sdk, tmp_path, url):
    with pytest.raises(sdk.SdkError.BadInput):
        new_client(sdk, url, tmp_path / "agent")


def test_parse_push(sdk):
    push = sdk.parse_push(
        {"type": "NEW_CHAT", "organizationId": "o", "chatId": "c", "cursor": "7"}
    )
    assert push is not None
    assert push.kind == sdk.NotificationKind.NEW_CHAT
    assert push.organization_id == "o"
    assert push.chat_id == "c"
    assert push.cursor == "7"

    assert sdk.parse_push({"title": "50% off everything", "body": "today only"}) is None
    assert sdk.parse_push({}) is None


def test_a_script_exits_cleanly_with_a_stream_still_running(server, tmp_path):
    """A program that ends while its subscription is live, with a listener busy in Python, exits
    with 0 once it registered `shutdown` with atexit: no SDK thread dies inside the interpreter."""
    script = textwrap.dedent(
        """
        import asyncio, atexit, sys, threading, time
        import switchboard_sdk as sb

        atexit.register(sb.shutdown)
        connected = threading.Event()

        class Store:
            def save(self, session): pass
            def clear(self): pass

        class Listener:
            def on_event(self, event): time.sleep(0.05)
            def on_connection_state(self, state):
                if state.is_connected():
                    connected.set()
                time.sleep(0.05)
            def on_outgoing_message(self, message): time.sleep(0.05)

        client = sb.Client(sb.ClientConfig(server_url=sys.argv[1], data_dir=sys.argv[2]), Store())
        asyncio.run(client.login(sys.argv[3], sys.argv[4]))
        handle = client.subscribe(Listener())
        if not connected.wait(15):
            sys.exit("the stream did not connect within 15 s")
        print("connected", flush=True)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.environ["SWITCHBOARD_SDK_BINDINGS"])
    done = subprocess.run(
        [sys.executable, "-c", script, server.base_url, str(tmp_path / "agent"), server.email, server.password],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "connected"), done.stderr


# ---- errors, logging, and the API's parity -----------------------------------------------------


class RecordingChatListener:
    """A ChatEventListener that hands each callback to the test thread through queues."""

    def __init__(self):
        self.events = queue.Queue()
        self.states = queue.Queue()
        self.refused = queue.Queue()

    def on_chat_event(self, event):
        self.events.put(event)

    def on_connection_state(self, state):
        self.states.put(state)

    def on_refused(self, code, message):
        self.refused.put((code, message))


class RecordingVisitors:
    """A VisitorsListener that hands each list to the test thread."""

    def __init__(self):
        self.lists = queue.Queue()

    def on_visitors(self, visitors):
        self.lists.put(visitors)

    def on_connection_state(self, state):
        pass


class RecordingLogger:
    """A LogListener that keeps every record (called on whichever thread logged)."""

    def __init__(self):
        self.records = queue.Queue()

    def log(self, record):
        self.records.put(record)

    def drain(self):
        records = []
        while True:
            try:
                records.append(self.records.get_nowait())
            except queue.Empty:
                return records


def create_agent(server, owner, name, role="AGENT"):
    """A new agent of the owner's organization; returns (email, password)."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    password = "python-agent-password"
    server.graphql(
        "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id } }",
        {
            "i": {
                "email": email,
                "name": name,
                "password": password,
                "role": role,
            }
        },
        token=owner.session().access_token,
    )
    return email, password


def test_each_refusal_is_its_own_error(sdk, server, run, tmp_path):
    owner, _ = new_client(sdk, server.base_url, tmp_path / "owner")
    run(owner.login(server.email, server.password))
    email, password = create_agent(server, owner, "Pia")
    agent, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(agent.login(email, password))
    # Later tests' chats must keep going to the owner.
    run(agent.set_routing_status(sdk.RoutingStatus.OFFLINE))

    with pytest.raises(sdk.SdkError.NotFound):
        run(owner.chat("no-such-chat", None, 20))
    with pytest.raises(sdk.SdkError.NotFound):
        run(owner.join_chat("no-such-chat"))
    with pytest.raises(sdk.SdkError.Forbidden) as forbidden:
        run(agent.join_chat("no-such-chat"))
    assert "role" in forbidden.value.msg, forbidden.value
    with pytest.raises(sdk.SdkError.BadInput) as bad:
        run(owner.create_tag(sdk.TagInput(name="PyColour", color="purple-ish")))
    assert bad.value.msg, bad.value

    # Five wrong passwords for one account, then the server makes the next attempt wait.
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    guesser, _ = new_client(sdk, server.base_url, tmp_path / "guesser")
    for _ in range(5):
        with pytest.raises(sdk.SdkError.Unauthenticated):
            run(guesser.login(stranger, "not-the-password"))
    with pytest.raises(sdk.SdkError.RateLimited) as limited:
        run(guesser.login(stranger, "not-the-password"))
    assert 0 < limited.value.retry_after_secs <= 15 * 60, limited.value
    assert f"{limited.value.retry_after_secs} seconds" in limited.value.msg, limited.value


def test_the_apps_logger_receives_the_sdks_records(sdk, server, run, tmp_path):
    logger = RecordingLogger()
    sdk.set_logger(logger, sdk.LogLevel.DEBUG)
    try:
        client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
        agent = run(client.login(server.email, server.password))
        listener = RecordingListener()
        handle = client.subscribe(listener)
        try:
            wait_connected(listener)
        finally:
            handle.cancel()
        records = logger.drain()
        assert sdk.LogRecord(
            level=sdk.LogLevel.INFO,
            target="switchboard_sdk::session",
            message=f"signed in agent_id={agent.id}",
        ) in records, records
        assert any(
            r.target == "switchboard_sdk::stream" and r.message.startswith("event stream connected")
            for r in records
        ), records
        # The libraries under the SDK (HTTP, WebSocket) log through the same hook.
        assert any(not r.target.startswith("switchboard_sdk") for r in records), records

        # A less detailed level leaves out what is below it.
        sdk.set_logger(logger, sdk.LogLevel.WARN)
        run(client.login(server.email, server.password))
        assert [r for r in logger.drain() if r.level == sdk.LogLevel.INFO] == []
    finally:
        sdk.remove_logger()


def test_a_supervisor_follows_a_team_chat_joins_it_and_writes(sdk, server, run, tmp_path):
    owner, _ = new_client(sdk, server.base_url, tmp_path / "owner")
    run(owner.login(server.email, server.password))
    email, password = create_agent(server, owner, "Sam")
    sam, _ = new_client(sdk, server.base_url, tmp_path / "sam")
    run(sam.login(email, password))
    sam_listener = RecordingListener()
    sam_stream = sam.subscribe(sam_listener)
    # The new chat must go to Sam, not to the owner who takes every other test's chats.
    run(owner.set_routing_status(sdk.RoutingStatus.NOT_ACCEPTING_CHATS))
    handles = [sam_stream]
    try:
        wait_connected(sam_listener)
        run(sam.set_routing_status(sdk.RoutingStatus.ACCEPTING_CHATS))
        _, chat_id = assigned_chat(server, sam_listener, "Where is my refund?")
        assert chat_id in [c.id for c in run(owner.team_chats())]

        watcher = RecordingChatListener()
        handles.append(owner.chat_events(chat_id, None, watcher))
        wait_for(
            watcher.events,
            lambda e: e.is_message_added() and e.message.text == "Where is my refund?",
            CONNECT_TIMEOUT,
            "the customer's opening message replayed",
        )
        joined = run(owner.join_chat(chat_id))
        assert joined.id == chat_id, joined
        wait_for(
            watcher.events,
            lambda e: e.is_message_added() and e.message.kind == sdk.MessageKind.SUPERVISOR_JOINED,
            SEND_TIMEOUT,
            "SUPERVISOR_JOINED",
        )
        outgoing = owner.send_message(chat_id, "Supervisor here: refunds take three days")
        wait_for(
            watcher.events,
            lambda e: e.is_message_added() and e.message.client_id == outgoing.client_id,
            SEND_TIMEOUT,
            "the supervisor's message",
        )
        run(sam.close_chat(chat_id))
        wait_for(
            watcher.events,
            lambda e: e.is_chat_closed() and e.chat.id == chat_id,
            SEND_TIMEOUT,
            "CHAT_CLOSED",
        )
        with pytest.raises(sdk.SdkError.Conflict):
            run(owner.join_chat(chat_id))

        # A chat the server will not show stops the stream, saying why.
        refused = RecordingChatListener()
        gone = owner.chat_events("no-such-chat", None, refused)
        handles.append(gone)
        code, message = refused.refused.get(timeout=CONNECT_TIMEOUT)
        assert code == sdk.ErrorCode.NOT_FOUND, (code, message)
        deadline = time.monotonic() + 5
        while not gone.is_finished():
            assert time.monotonic() < deadline, "the refused stream is still running"
            time.sleep(0.05)
    finally:
        for handle in handles:
            handle.cancel()
        run(sam.set_routing_status(sdk.RoutingStatus.OFFLINE))
        run(owner.set_routing_status(sdk.RoutingStatus.ACCEPTING_CHATS))


def test_an_offline_message_marked_handled_and_open_again(sdk, server, run, tmp_path):
    token = server.graphql(
        'mutation($k: String!) { startVisitorSession(input: {widgetKey: $k, name: "Uma"}) { token } }',
        {"k": server.widget_key},
    )["startVisitorSession"]["token"]
    left = server.graphql(
        'mutation { leaveOfflineMessage(input: {name: "Uma", email: "uma@customer.test", '
        'text: "Call me back"}) { id } }',
        token=token,
    )["leaveOfflineMessage"]["id"]
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))

    handled = run(client.mark_offline_message_handled(left, True))
    assert (handled.message.id, handled.message.handled) == (left, True), handled
    listed = next(t for t in run(client.offline_messages()) if t.message.id == left)
    assert listed.message.handled is True
    assert run(client.mark_offline_message_handled(left, False)).message.handled is False
    with pytest.raises(sdk.SdkError.NotFound):
        run(client.mark_offline_message_handled("no-such-message", True))


def test_a_visitor_on_the_site_is_listed_watched_and_greeted(
    sdk, server, run, tmp_path, visitor_page
):
    session = server.graphql(
        """mutation($k: String!) { startVisitorSession(input: {widgetKey: $k, visitorId: "py-visitor",
            name: "Vic", pageUrl: "https://shop.test/pricing", pageTitle: "Pricing"}) {
            token customer { id } } }""",
        {"k": server.widget_key},
    )["startVisitorSession"]
    customer_id = session["customer"]["id"]
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    watcher = RecordingVisitors()
    handle = client.watch_visitors(watcher)
    page = visitor_page(session["token"])
    try:
        visitors, _ = wait_for(
            watcher.lists,
            lambda visitors: any(v.customer_id == customer_id for v in visitors),
            CONNECT_TIMEOUT,
            f"a list with visitor {customer_id}",
        )
        vic = next(v for v in visitors if v.customer_id == customer_id)
        assert vic.state == sdk.VisitorState.BROWSING, vic
        assert vic.current_page.url == "https://shop.test/pricing", vic
        assert customer_id in [v.customer_id for v in run(client.visitors_on_site())]

        greeting = run(client.send_greeting(customer_id, "Hi from Python: can I help?"))
        assert greeting.text == "Hi from Python: can I help?", greeting
        for _ in range(10):
            shown = page.next()
            event = ((shown.get("payload") or {}).get("data") or {}).get("visitorEvents") or {}
            if (event.get("greeting") or {}).get("id") == greeting.id:
                break
        else:
            pytest.fail(f"the visitor's page never showed greeting {greeting.id}")
        wait_for(
            watcher.lists,
            lambda visitors: any(
                v.customer_id == customer_id and v.state == sdk.VisitorState.INVITED
                for v in visitors
            ),
            CONNECT_TIMEOUT,
            "the visitor INVITED",
        )
        with pytest.raises(sdk.SdkError.NotFound):
            run(client.send_greeting("no-such-customer", "Hello"))
    finally:
        handle.cancel()


def test_the_archive_finds_a_closed_chat_by_its_words(sdk, server, run, tmp_path):
    client, _ = new_client(sdk, server.base_url, tmp_path / "agent")
    run(client.login(server.email, server.password))
    listener = RecordingListener()
    handle = client.subscribe(listener)
    try:
        wait_connected(listener)
        _, chat_id = assigned_chat(server, listener, "My pythonic teapot arrived cracked")
        run(client.close_chat(chat_id))
        page = run(
            client.archive(
                sdk.ArchiveFilter(search="pythonic teapot", status=sdk.ChatStatus.CLOSED), 20, None
            )
        )
        assert [item.chat.id for item in page.items] == [chat_id], page
        snippet = page.items[0].snippet
        assert any(part.highlighted for part in snippet), snippet
        with pytest.raises(sdk.SdkError.BadInput):
            run(client.archive(sdk.ArchiveFilter(search="-only"), 20, None))
    finally:
        handle.cancel()
