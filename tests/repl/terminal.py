"""`nnc repl` on a pseudo-terminal: line editing, completion, history, Ctrl-C.

    python3 tests/repl/terminal.py NNC SOURCE_DIR

Starts `nnc repl examples/mnist.nn` on a pty (HOME a scratch directory, for
the history file) and types at it as a person would:
  - `:sum` TAB completes to `:summary`;
  - a typo erased with Backspace is not part of the command;
  - Ctrl-C at the prompt drops the line typed and the session goes on;
  - Ctrl-C during `:train 1000 epochs` stops the training at a step boundary
    and returns to the prompt with the weights kept (`:eval` still works);
  - the commands typed are in ~/.nnc_history when the session ends.
Needs only the standard library.
"""
import os
import pty
import re
import select
import shutil
import sys
import tempfile
import time


def main():
    nnc, source = sys.argv[1:3]
    home = tempfile.mkdtemp(prefix="nnc-pty-")
    try:
        run(nnc, source, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(nnc, source, home):
    pid, fd = pty.fork()
    if pid == 0:  # the child: nnc on the terminal
        os.chdir(source)
        env = dict(os.environ, HOME=home, TERM="xterm")
        os.execve(nnc, [nnc, "repl", "examples/mnist.nn", "--data", "tests/data/mnist-slice"], env)

    seen = b""

    transcript = []

    def read_until(pattern, timeout=60):
        nonlocal seen
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode())
        while True:
            m = regex.search(seen)
            if m:
                before, seen = seen[:m.end()], seen[m.end():]
                transcript.append(before.decode(errors="replace"))
                return before.decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"timed out waiting for {pattern!r}; the terminal showed:\n"
                     + "".join(transcript)[-1500:] + seen.decode(errors="replace"))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    fail(f"nnc ended while waiting for {pattern!r}:\n" + seen.decode(errors="replace"))
                seen += chunk

    def fail(message):
        print("terminal.py: " + message)
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        sys.exit(1)

    def type_(text):
        # As a person would: not in the instant the prompt appears, before
        # libedit has put the terminal in its mode (keys typed earlier are
        # the terminal driver's, echoed and edited by it).
        time.sleep(0.2)
        os.write(fd, text.encode())

    read_until(r"nnc> ")
    # Completion: TAB after ":sum".
    type_(":sum\t")
    read_until(r"mary")  # the rest of the word, echoed after the cursor moves
    type_("\r")
    text = read_until(r"nnc> ")
    if "Model Net" not in text:
        fail("TAB did not complete :sum to :summary:\n" + text)
    # Editing: a typo erased with Backspace.
    type_(":evalx\x7f\r")
    text = read_until(r"nnc> ")
    if "unknown command" in text or "test: loss" not in text:
        fail("Backspace did not erase the typo:\n" + text)
    # Ctrl-C at the prompt drops the line typed, not the session.
    type_(":frobnicate half-typed\x03")
    read_until(r"nnc> ")
    type_(":summary\r")
    text = read_until(r"nnc> ")
    if "Model Net" not in text or "frobnicate" in text:
        fail("Ctrl-C at the prompt did not drop the line:\n" + text)
    # Ctrl-C stops a long training at a step boundary.
    type_(":train 1000 epochs\r")
    read_until(r"ETA")  # the progress line has started
    time.sleep(0.5)
    type_("\x03")
    text = read_until(r"nnc> ", timeout=30)
    m = re.search(r"stopped after ([0-9,]+) steps", text)
    if not m:
        fail("Ctrl-C did not stop the training:\n" + text)
    type_(":eval\r")
    text = read_until(r"nnc> ")
    if "test: loss" not in text:
        fail("the session did not go on after Ctrl-C:\n" + text)
    type_(":quit\r")
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        fail(f"nnc repl ended with status {status}")
    with open(os.path.join(home, ".nnc_history"), errors="replace") as f:
        history = f.read().replace("\\040", " ")  # libedit's file escapes spaces
    for entry in (":summary", ":eval", ":train 1000 epochs"):
        if entry not in history:
            fail(f"{entry!r} is not in the history file:\n{history}")
    print("terminal.py: completion, editing, Ctrl-C and history work")


if __name__ == "__main__":
    main()
