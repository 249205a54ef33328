#!/usr/bin/env python3
"""The docs test: the code blocks of README.md and docs/*.md run, their links lead somewhere, and
docs/reference.md's options section is the one the option table gives.

  check_docs.py --source DIR --build DIR [--write-options]

The info string after a block's opening fence says what the block is; every block has one:

  sh                 commands. Run with `sh -ex` (the first command that fails fails the block) in a
                     scratch directory, one per page: a page's blocks run in order there and share
                     its files (not its processes). The build's tools/, examples/ and bench/ are
                     first on PATH, and `build` in the scratch directory is the build tree, so
                     `herdctl` and `build/tools/herdctl` both work. Each port 8080 to 8099 named in
                     a page's blocks is replaced by a free port (the same number, the same port,
                     within a page). A block has 30 s; the processes it started (its process group,
                     and every process below the test, which is their subreaper: --daemon's
                     detached ones too) are killed when it ends, and any still running 2 s after
                     its shell ended fails it.
  sh serve           an HTTP server in the foreground: started as a `sh` block, it must answer
                     `GET /` with a 2xx status on every port it names within 30 s, and is then
                     stopped (TERM to its process group, KILL 10 s later).
  cpp                a whole program: compiled (in BUILD/tests/docs/) and linked against the build's
                     libherd (its uninstalled herd.pc, 90 s), then run with --check -w 1.
  cpp fragment       part of a program the text around it shows: not compiled.
  ini                a configuration file: written where its first line's comment names it
                     (`# app.conf: ...`), else to herd.conf, and checked with
                     `hello-http --check --config FILE` (its Worker types are web and jobs).
  LANG norun: WHY    not run, for the reason given (root, systemd, minutes of work); WHY is required.
  text, console      output, or a terminal session with its output: not run.
  meson              a fragment of a meson.build: not run (tests/consumer builds a whole one).

The first block of README.md is the exception: the two commands CI runs (`.ci/deps` installs
packages as root; `.ci/test` is this suite), kept byte for byte as they are.

A failure names the page and the line of the block's opening fence. With --write-options the
options section of docs/reference.md is rewritten from `herd-man reference` instead of compared.
"""
import argparse
import difflib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BLOCK_TIMEOUT = 30
COMPILE_TIMEOUT = 90
OPTIONS_BEGIN = "<!-- generated from lib/herd/config/option_table.cpp"
OPTIONS_END = "<!-- end of the generated options -->"
PORT = re.compile(r"(?<![\d.])80[89]\d(?!\d)")
PR_SET_CHILD_SUBREAPER = 36


class Block:
    def __init__(self, page, line, info, text):
        self.page, self.line, self.info, self.text = page, line, info.strip(), text

    def where(self):
        return f"{self.page}:{self.line}"


def blocks_of(page, text):
    """The fenced blocks of a page, with the line of each opening fence (indented ones too)."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^( *)```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, start, body = len(m.group(1)), i + 1, []
        i += 1
        while i < len(lines) and not re.match(r"^ *```\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        out.append(Block(page, start, m.group(2), "\n".join(body) + "\n"))
        i += 1
    return out


def slug(heading):
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


def anchors_of(text):
    found, inside = set(), False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


def check_links(source, page, text):
    """Every relative link of a page names a file of the tree, and a heading of it after '#'."""
    failures, inside = [], False
    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if inside:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = os.path.normpath(os.path.join(source, os.path.dirname(page), path)) if path else \
                os.path.join(source, page)
            if not os.path.exists(file):
                failures.append(f"{page}:{n}: the link ({target}) names no file of the tree")
            elif anchor and file.endswith(".md") and anchor not in anchors_of(open(file, encoding="utf-8").read()):
                failures.append(f"{page}:{n}: the link ({target}) names no heading of {os.path.relpath(file, source)}")
    return failures


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants():
    """Every process below this one. The test is the subreaper of what its blocks start, so a
    process that detached (--daemon's double fork) is still found here."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def reap_orphans(proc):
    """Reap what was reparented to the test, leaving the block's shell to subprocess."""
    for pid in descendants():
        if pid != proc.pid:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def clean_up(proc, grace):
    """Kill what a block started: its process group and every process below the test. Returns the
    pids that were still running `grace` seconds after the block's shell was gone."""
    def running():
        reap_orphans(proc)
        return [pid for pid in descendants() if pid != proc.pid and not is_zombie(pid)]
    deadline = time.monotonic() + grace
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = running()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        for pid in running():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while running() and time.monotonic() < deadline:
            time.sleep(0.05)
    return left


def is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Runner:
    def __init__(self, source, build):
        self.source, self.build = source, build
        self.env = dict(os.environ)
        self.env["PATH"] = ":".join(os.path.join(build, d) for d in ("tools", "examples", "bench")) + \
            ":" + self.env.get("PATH", "")
        self.env.pop("HERD_CONTROL", None)

    def start(self, block, scratch, script):
        path = os.path.join(scratch, f".block-{block.line}.sh")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        # output to a file, not a pipe: a server the block left running would hold a pipe open
        with open(path + ".out", "w+b") as out:
            proc = subprocess.Popen(["sh", "-ex", path], cwd=scratch, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc.output = lambda: open(path + ".out", "rb").read()
        return proc

    def run_sh(self, block, scratch, script):
        proc = self.start(block, scratch, script)
        try:
            proc.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            clean_up(proc, 0)
            proc.wait()
            return f"did not finish within {BLOCK_TIMEOUT} s", proc.output()
        left = clean_up(proc, 2)
        out = proc.output()
        if proc.returncode != 0:
            return f"exited with code {proc.returncode}", out
        if left:
            return f"left processes running (pids {', '.join(map(str, left))})", out
        return None, out

    def run_serve(self, block, scratch, script, ports):
        if not ports:
            return "names no port 8080 to 8099 to be answered on", b""
        proc = self.start(block, scratch, script)
        deadline = time.monotonic() + BLOCK_TIMEOUT
        waiting, why = set(ports), None
        while waiting and time.monotonic() < deadline and proc.poll() is None:
            for port in list(waiting):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/")
                    if 200 <= conn.getresponse().status < 300:
                        waiting.discard(port)
                    conn.close()
                except (OSError, http.client.HTTPException):
                    pass
            time.sleep(0.1)
        if proc.poll() is not None:
            why = f"exited with code {proc.returncode} before it was stopped"
        elif waiting:
            why = f"port {', '.join(map(str, sorted(waiting)))} answered no GET / with a 2xx status within {BLOCK_TIMEOUT} s"
        else:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                why = "did not stop within 10 s of TERM"
        clean_up(proc, 0)
        proc.wait()
        return why, proc.output()

    def compile(self, block, scratch):
        # at a path that stays the same from run to run, so that ccache finds it again
        where = os.path.join(self.build, "tests", "docs")
        os.makedirs(where, exist_ok=True)
        src = os.path.join(where, block.page.replace("/", "-")[:-3] + f"-{block.line}.cpp")
        exe = src[:-4]
        with open(src, "w", encoding="utf-8") as f:
            f.write(block.text)
        env = dict(self.env, PKG_CONFIG_PATH=os.path.join(self.build, "meson-uninstalled"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "herd"], env=env, capture_output=True, text=True)
        if flags.returncode != 0:
            return "pkg-config found no herd-uninstalled.pc in the build", flags.stderr.encode()
        compiler = os.environ.get("CXX", "c++").split()
        if shutil.which("ccache") and compiler[0] != "ccache":
            compiler = ["ccache"] + compiler
        cflags = [f for f in flags.stdout.split() if not f.startswith(("-L", "-l", "-pthread"))]
        libs = [f for f in flags.stdout.split() if f.startswith(("-L", "-l", "-pthread"))]
        steps = [("does not compile against herd", compiler + ["-std=c++20", *cflags, "-c", src, "-o", exe + ".o"]),
                 ("does not link against libherd", compiler[-1:] + ["-o", exe, exe + ".o", *libs,
                                                                    "-Wl,-rpath," + os.path.join(self.build, "lib")])]
        for what, command in steps:   # apart, so that ccache keeps the compilation
            try:
                done = subprocess.run(command, capture_output=True, timeout=COMPILE_TIMEOUT)
            except subprocess.TimeoutExpired:
                return f"did not compile and link within {COMPILE_TIMEOUT} s", b""
            if done.returncode != 0:
                return what, done.stderr
        check = subprocess.run([exe, "--check", "-w", "1"], capture_output=True, timeout=BLOCK_TIMEOUT)
        if check.returncode != 0:
            return f"compiled, but `--check -w 1` exited with code {check.returncode}", check.stdout + check.stderr
        return None, b""

    def check_ini(self, block, scratch, text):
        first = text.split("\n", 1)[0]
        m = re.match(r"#\s*([\w.-]+\.conf)\b", first)
        name = m.group(1) if m else "herd.conf"
        with open(os.path.join(scratch, name), "w", encoding="utf-8") as f:
            f.write(text)
        done = subprocess.run([os.path.join(self.build, "examples", "hello-http"), "--check", "--config", name],
                              cwd=scratch, env=self.env, capture_output=True, timeout=BLOCK_TIMEOUT)
        if done.returncode != 0:
            return f"hello-http --check --config {name} exited with code {done.returncode}", done.stdout + done.stderr
        return None, b""


def check_options(source, build, write):
    page = os.path.join(source, "docs", "reference.md")
    text = open(page, encoding="utf-8").read()
    done = subprocess.run([os.path.join(build, "tools", "herd-man"), "reference", "0"], capture_output=True, text=True)
    if done.returncode != 0:
        return [f"herd-man reference failed: {done.stderr.strip()}"]
    begin, end = text.find(OPTIONS_BEGIN), text.find(OPTIONS_END)
    if begin < 0 or end < begin:
        return ["docs/reference.md: no options section between its markers "
                f"('{OPTIONS_BEGIN} ...' and '{OPTIONS_END}')"]
    end += len(OPTIONS_END) + 1
    if text[begin:end] == done.stdout:
        return []
    if write:
        with open(page, "w", encoding="utf-8") as f:
            f.write(text[:begin] + done.stdout + text[end:])
        print("docs/reference.md: options section written from herd-man reference")
        return []
    line = text[:begin].count("\n") + 1
    diff = "".join(difflib.unified_diff(text[begin:end].splitlines(True), done.stdout.splitlines(True),
                                        "docs/reference.md", "herd-man reference"))
    return [f"docs/reference.md:{line}: the options section is not what the option table gives; "
            f"write it with tests/docs/check_docs.py --source . --build build --write-options\n{diff}"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--write-options", action="store_true")
    args = parser.parse_args()
    source, build = os.path.abspath(args.source), os.path.abspath(args.build)
    import ctypes
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("check_docs: prctl(PR_SET_CHILD_SUBREAPER) failed: detached processes could not be cleaned up")
        return 1

    failures = check_options(source, build, args.write_options)
    pages = ["README.md"] + sorted("docs/" + f for f in os.listdir(os.path.join(source, "docs")) if f.endswith(".md"))
    runner, counts = Runner(source, build), {"run": 0, "not run": 0}
    started = time.monotonic()
    for page in pages:
        text = open(os.path.join(source, page), encoding="utf-8").read()
        failures += check_links(source, page, text)
        blocks = blocks_of(page, text)
        if page == "README.md":
            blocks = blocks[1:]   # the two commands CI runs (see above)
        ports = {}
        scratch = tempfile.mkdtemp(prefix="herd-docs-")
        os.symlink(build, os.path.join(scratch, "build"))
        try:
            for block in blocks:
                words = block.info.split(None, 1)
                lang, rest = (words[0] if words else ""), (words[1] if len(words) > 1 else "")
                if rest.startswith("norun"):
                    if not rest[len("norun"):].lstrip(":").strip():
                        failures.append(f"{block.where()}: ```{block.info} gives no reason (norun: WHY)")
                    counts["not run"] += 1
                    continue
                if (lang, rest) in (("text", ""), ("console", ""), ("meson", ""), ("cpp", "fragment")):
                    counts["not run"] += 1
                    continue
                if (lang, rest) not in (("sh", ""), ("sh", "serve"), ("cpp", ""), ("ini", "")):
                    failures.append(f"{block.where()}: a block without a known info string (```{block.info}): "
                                    "see the top of tests/docs/check_docs.py")
                    continue
                text_run = PORT.sub(lambda m: str(ports.setdefault(m.group(0), free_port())), block.text)
                block_ports = sorted({ports[p] for p in PORT.findall(block.text)})
                t0 = time.monotonic()
                if lang == "sh" and rest == "serve":
                    why, out = runner.run_serve(block, scratch, text_run, block_ports)
                elif lang == "sh":
                    why, out = runner.run_sh(block, scratch, text_run)
                elif lang == "cpp":
                    why, out = runner.compile(block, scratch)
                else:
                    why, out = runner.check_ini(block, scratch, text_run)
                counts["run"] += 1
                took = time.monotonic() - t0
                if why:
                    tail = out.decode(errors="replace").rstrip().split("\n")[-15:]
                    failures.append(f"{block.where()}: ```{block.info} block {why}:\n    " + "\n    ".join(tail))
                else:
                    print(f"ok  {block.where()}  ```{block.info}  ({took:.1f} s)")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"{counts['run']} blocks run, {counts['not run']} not run (output, fragments, norun), "
          f"{time.monotonic() - started:.1f} s")
    for failure in failures:
        print("FAIL " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
