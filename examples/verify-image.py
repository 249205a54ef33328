#!/usr/bin/env python3
"""examples/Dockerfile and examples/hello-http.k8s.yaml hold together, without docker at hand.

    examples/verify-image.py SOURCE_ROOT BUILD_ROOT

- Every binary the runtime stage copies from the build stage exists in BUILD_ROOT, and every
  shared library it needs (ldd) belongs (dpkg -S) to a package the runtime stage installs, or to
  one debian:12-slim has already; the stage installs no package that none of them needs.
- Every package either stage installs is known to apt (Debian 12's lists on this machine).
- The image stops with SIGQUIT and runs the manager as PID 1 (exec-form ENTRYPOINT).
- The Deployment's readiness probe is `herdctl --control PATH ready` with the PATH the server is
  started with, on a mounted volume, and terminationGracePeriodSeconds exceeds preStop's sleep
  plus --graceful-timeout.
Exit 77 (skipped) without ldd, dpkg or apt-cache.
"""
import json
import os
import re
import shutil
import subprocess
import sys

# In debian:12-slim already (libstdc++6 and libgcc-s1 come with apt)
BASE = {"libc6", "libgcc-s1", "libstdc++6"}

errors = []


def fail(message):
    errors.append(message)


def stages(dockerfile):
    """[(FROM line, [instructions])]; continuation lines joined."""
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def apt_packages(instructions):
    packages = []
    for line in instructions:
        for m in re.finditer(r"apt-get install ((?:-\S+ )*)([^&;]+)", line):
            packages += m.group(2).split()
    return packages


def owner(path):
    candidates = {path, os.path.realpath(path)}
    for c in list(candidates):
        if c.startswith("/lib"):
            candidates.add("/usr" + c)
        elif c.startswith("/usr/lib"):
            candidates.add(c[4:])
    for c in sorted(candidates):
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    return None


def duration_s(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        fail(f"cannot read the duration {text!r}")
        return 0
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def check_dockerfile(src, build):
    all_stages = stages(os.path.join(src, "examples", "Dockerfile"))
    if len(all_stages) < 2:
        return fail("the Dockerfile has no separate build and runtime stages")
    runtime_from, runtime = all_stages[-1]
    if not re.match(r"FROM debian:12-slim\b", runtime_from):
        fail(f"the runtime stage is not debian:12-slim: {runtime_from}")
    installed = set(apt_packages(runtime))
    every = sorted({p for _, instructions in all_stages for p in apt_packages(instructions)})
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions", *every], capture_output=True, text=True).stdout
    for package in sorted(set(every) - set(re.findall(r"^Package: (\S+)$", shown, re.M))):
        fail(f"apt knows no package {package}")

    needed = {}
    copied = [w for line in runtime if line.startswith("COPY --from=build") for w in line.split()[2:-1]]
    if not copied:
        fail("the runtime stage copies no binary from the build stage")
    for path in copied:
        binary = os.path.join(build, os.path.relpath(path, "/build"))
        if not os.access(binary, os.X_OK):
            fail(f"{path}: no such binary in the build tree ({binary})")
            continue
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        for line in ldd.splitlines():
            if "not found" in line:
                fail(f"{path}: {line.strip()}")
            m = re.search(r"=> (/\S+)", line)
            if m:
                package = owner(m.group(1))
                if package is None:
                    fail(f"{path}: {m.group(1)} belongs to no package")
                else:
                    needed.setdefault(package, set()).add(os.path.basename(m.group(1)))
    for package, libraries in sorted(needed.items()):
        if package not in installed and package not in BASE:
            fail(f"the runtime stage does not install {package} ({', '.join(sorted(libraries))})")
    for package in sorted(installed - set(needed)):
        fail(f"the runtime stage installs {package}, which no binary needs")
    print(f"runtime stage: {' '.join(sorted(installed))}; libraries from: {' '.join(sorted(needed))}")

    instructions = [line for _, stage in all_stages for line in stage]
    if "STOPSIGNAL SIGQUIT" not in instructions:
        fail("the image does not stop with SIGQUIT (herd's graceful stop)")
    entry = [line for line in runtime if line.startswith("ENTRYPOINT")]
    if not entry or not entry[-1].split(None, 1)[1].lstrip().startswith("["):
        fail("the ENTRYPOINT is not in exec form: a shell would be PID 1")


def option(args, name):
    return args[args.index(name) + 1] if name in args else None


def check_deployment(src):
    try:
        import yaml
    except ImportError:
        print("SKIP the Kubernetes checks: python3-yaml is not installed")
        return
    docs = [d for d in yaml.safe_load_all(open(os.path.join(src, "examples", "hello-http.k8s.yaml"))) if d]
    deployment = next((d for d in docs if d.get("kind") == "Deployment"), None)
    if deployment is None:
        return fail("hello-http.k8s.yaml has no Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container.get("args", [])
    control = option(args, "--control")
    graceful = duration_s(option(args, "--graceful-timeout") or "30s")
    if control is None:
        fail("the server is started without --control: herdctl cannot ask it")
    probe = container.get("readinessProbe", {}).get("exec", {}).get("command", [])
    if not probe or not probe[0].endswith("herdctl") or probe[-1] != "ready" or option(probe, "--control") != control:
        fail(f"readinessProbe is not `herdctl --control {control} ready`: {probe}")
    if "livenessProbe" not in container:
        fail("no livenessProbe")
    mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
    if control and not any(control.startswith(m.rstrip("/") + "/") for m in mounts):
        fail(f"the control socket {control} is not on a mounted volume (read-only root)")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_s = float(pre_stop[-1]) if pre_stop and pre_stop[0].endswith("sleep") else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_stop_s + graceful:
        fail(f"terminationGracePeriodSeconds {grace} does not exceed preStop ({pre_stop_s:g} s) + "
             f"--graceful-timeout ({graceful:g} s): the kubelet would KILL workers still draining")
    print(f"deployment: grace {grace} s, preStop {pre_stop_s:g} s, graceful {graceful:g} s; ready: {json.dumps(probe)}")


def main():
    src, build = sys.argv[1], sys.argv[2]
    for tool in ("ldd", "dpkg", "apt-cache"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed")
            return 77
    check_dockerfile(src, build)
    check_deployment(src)
    for message in errors:
        print("FAIL: " + message)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
