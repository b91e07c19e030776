"""The Kotlin layer (mobile-sdk/kotlin, Flows over the listeners) on the JVM, against the real
server: the generated Kotlin bindings, Flows.kt and mobile-sdk/tests/kotlin/AgentOnTheJvm.kt
compiled once with kotlinc, then run with `java` through JNA while this test plays the customer.

Needs the Kotlin compiler (`npm ci` in mobile-sdk/tests/kotlin, or SWITCHBOARD_KOTLINC naming a
kotlinc 2.x), JNA (Debian's libjna-java, or SWITCHBOARD_JNA_JAR) and `java`. Without them the
tests are skipped on a laptop and fail in CI (CI=true).
"""

import os
import queue
import re
import shutil
import subprocess
import threading
import time

import pytest

from test_sdk import start_customer_chat

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KOTLIN_TESTS = os.path.join(ROOT, "mobile-sdk", "tests", "kotlin")
# Generating the bindings and compiling ~11,500 lines takes about a minute.
COMPILE_TIMEOUT = 600
RUN_TIMEOUT = 180
STEP_TIMEOUT = 45.0


def _unavailable(why):
    how = (
        "install it: `npm ci` in mobile-sdk/tests/kotlin for kotlinc (or SWITCHBOARD_KOTLINC), "
        "`apt-get install libjna-java` for JNA (or SWITCHBOARD_JNA_JAR), a JDK for java"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"the Kotlin tests cannot run: {why}; {how}", pytrace=False)
    pytest.skip(f"the Kotlin tests need {why.split(' is ')[0]}; {how}")


class KotlinToolchain:
    def __init__(self, kotlinc, jna, coroutines, stdlib):
        self.kotlinc = kotlinc
        self.jna = jna
        self.coroutines = coroutines
        self.stdlib = stdlib


@pytest.fixture(scope="session")
def kotlin_toolchain():
    kotlinc = os.environ.get("SWITCHBOARD_KOTLINC") or os.path.join(
        KOTLIN_TESTS, "node_modules", "kotlin-compiler", "bin", "kotlinc"
    )
    if not os.access(kotlinc, os.X_OK):
        _unavailable(f"the Kotlin compiler is missing ({kotlinc})")
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(kotlinc))), "lib")
    coroutines = os.path.join(lib, "kotlinx-coroutines-core-jvm.jar")
    stdlib = os.path.join(lib, "kotlin-stdlib.jar")
    for jar in (coroutines, stdlib):
        if not os.path.isfile(jar):
            _unavailable(f"the Kotlin distribution is incomplete ({jar} is missing)")
    jna = os.environ.get("SWITCHBOARD_JNA_JAR", "/usr/share/java/jna.jar")
    if not os.path.isfile(jna):
        _unavailable(f"JNA is missing ({jna})")
    if shutil.which("java") is None:
        _unavailable("java is missing")
    return KotlinToolchain(kotlinc, jna, coroutines, stdlib)


class KotlinProgram:
    def __init__(self, jar, classpath, library_dir, compile_seconds):
        self.jar = jar
        self.classpath = classpath
        self.library_dir = library_dir
        self.compile_seconds = compile_seconds


@pytest.fixture(scope="session")
def kotlin_program(kotlin_toolchain, tmp_path_factory):
    """The bindings as `mobile-sdk/bindgen.sh kotlin DIR` writes them (generated file and the
    layer), compiled once with the test program into one jar."""
    bindings = os.environ["SWITCHBOARD_SDK_BINDINGS"]  # has libswitchboard_sdk.so (conftest)
    work = tmp_path_factory.mktemp("kotlin")
    sources = work / "src"
    generated = subprocess.run(
        ["bash", os.path.join(ROOT, "mobile-sdk", "bindgen.sh"), "kotlin", str(sources)],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT,
    )
    assert generated.returncode == 0, generated.stderr
    package = sources / "dev" / "switchboard" / "sdk"
    assert (package / "switchboard_sdk.kt").is_file(), list(package.iterdir())
    assert (package / "Flows.kt").is_file(), "bindgen.sh kotlin did not copy the layer"

    jar = work / "agent-on-the-jvm.jar"
    started = time.monotonic()
    compiled = subprocess.run(
        [
            kotlin_toolchain.kotlinc,
            "-cp",
            os.pathsep.join([kotlin_toolchain.jna, kotlin_toolchain.coroutines]),
            "-jvm-target",
            "17",
            "-d",
            str(jar),
            *sorted(str(p) for p in package.glob("*.kt") if p.name != "switchboard_sdk.kt"),
            str(package / "switchboard_sdk.kt"),
            os.path.join(KOTLIN_TESTS, "AgentOnTheJvm.kt"),
        ],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT,
    )
    seconds = time.monotonic() - started
    output = compiled.stdout + compiled.stderr
    assert compiled.returncode == 0, output
    # The generated file is uniffi's; ours compile without a warning.
    ours = [line for line in output.splitlines() if "Flows.kt" in line or "AgentOnTheJvm.kt" in line]
    assert ours == [], "\n".join(ours)
    print(f"kotlinc: bindings, layer and test program compiled in {seconds:.1f} s")
    classpath = os.pathsep.join(
        [str(jar), kotlin_toolchain.jna, kotlin_toolchain.coroutines, kotlin_toolchain.stdlib]
    )
    return KotlinProgram(jar, classpath, bindings, seconds)


def test_kotlin_records_cannot_be_changed(kotlin_toolchain, kotlin_program):
    """`generate_immutable_records`: a record's fields are `val`, so assigning one does not
    compile."""
    refused = subprocess.run(
        [
            kotlin_toolchain.kotlinc,
            "-cp",
            kotlin_program.classpath,
            "-d",
            str(kotlin_program.jar.parent / "immutable"),
            os.path.join(KOTLIN_TESTS, "RecordsAreImmutable.kt"),
        ],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT,
    )
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, "kotlinc accepted an assignment to a record's field"
    assert "RecordsAreImmutable.kt:7:" in output and "'val' cannot be reassigned" in output, output


class Program:
    """The running Kotlin program: its stdout lines through a queue, so every read is bounded."""

    def __init__(self, process):
        self.process = process
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, name="kotlin-stdout", daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, step):
        """Waits for the program's next line, which must be `step` (and its value)."""
        try:
            line = self.lines.get(timeout=STEP_TIMEOUT)
        except queue.Empty:
            line = f"(nothing within {STEP_TIMEOUT:.0f} s)"
        if line is None or not (line == step or line.startswith(step + " ")):
            self.fail(f"expected `{step}`, got `{line}`")
        self.seen.append(line)
        return line[len(step) + 1 :]

    def tell(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def fail(self, why):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        stderr = self.process.stderr.read()
        pytest.fail(f"{why}\nsteps so far: {self.seen}\n--- the program's stderr ---\n{stderr}")


def test_an_agent_app_on_the_jvm_through_flows(kotlin_program, server, tmp_path):
    process = subprocess.Popen(
        [
            "java",
            f"-Djna.library.path={kotlin_program.library_dir}",
            "-cp",
            kotlin_program.classpath,
            "AgentOnTheJvmKt",
            server.base_url,
            str(tmp_path / "agent"),
            server.email,
            server.password,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    program = Program(process)
    try:
        program.expect("visitors-conflated")
        program.expect("unauthenticated")
        program.expect("signed-in")
        program.expect("connected")

        # The customer starts a chat: the program hears ChatAssigned from agentUpdates().
        opening = "Hello, is anyone there? (from the Kotlin test)"
        visitor_token, chat = start_customer_chat(server, opening)
        program.tell(f"chat {chat['id']}")
        assert program.expect("assigned") == opening

        # Its reply went through the outbox (Outgoing SENT): the customer has it, once.
        client_id = program.expect("sent")
        transcript = server.graphql(
            "query($id: ID!) { chat(id: $id) { events(first: 100) { items { text clientId } } } }",
            {"id": chat["id"]},
            token=visitor_token,
        )["chat"]["events"]["items"]
        replies = [item for item in transcript if item["clientId"] == client_id]
        assert replies == [{"text": "Hello from Kotlin", "clientId": client_id}], transcript

        # chatUpdates(chatId) is live: the customer's next message reaches it.
        program.expect("following")
        follow_up = "And one more question"
        server.graphql(
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }",
            {"c": chat["id"], "t": follow_up},
            token=visitor_token,
        )
        program.tell(f"customer-wrote {follow_up}")
        program.expect("customer-message-seen")

        assert program.expect("not-found"), "SdkException.NotFound without its text"
        program.expect("cancelled")
        visitors, states = program.expect("signed-out").split(" ", 1)
        assert int(visitors) >= 0
        assert states.split(",")[-1].endswith("SignedOut"), states
        program.expect("done")
        try:
            code = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            program.fail("the program did not exit after its last step")
        if code != 0:
            program.fail(f"the program exited with {code}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
