"""``make test-kernels``: the tests marked ``kernels``, on this machine's kernel and on others.

For each Debian kernel package named on the command line (``make test-kernels KERNELS=...``;
by default ``linux-image-amd64``, the distribution's kernel), the lane:

1. resolves the name through apt to one kernel image package, downloads it and its headers
   with ``apt-get download`` and unpacks them into a cache (``~/.cache/bpfnb/kernels``);
2. runs the selected tests on this machine's kernel, which also builds their BPF objects with
   clang into a directory the guests share (clang under emulation is slow);
3. boots each kernel with virtme-ng (QEMU; with KVM only when ``/dev/kvm`` is usable) on this
   machine's file system, and runs the same tests there with this virtualenv's Python;
4. prints a pytest summary per kernel, and a total.

A missing tool or kernel package fails the lane under ``BPFNB_REQUIRE_KERNEL=1`` (CI) and skips
it with the reason otherwise; ``scripts/install-kernel-test-deps`` installs the tools.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bpfnb" / "kernels"
DEFAULT_KERNELS = ["linux-image-amd64"]
SELECTION = ["-m", "kernels", "tests/kernel"]
INSTALL = "bash scripts/install-kernel-test-deps"
TIMEOUT = float(os.environ.get("BPFNB_KERNEL_TIMEOUT", "1200"))  # seconds per kernel
# The tools the lane runs, and the Debian package that brings each.
TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",  # virtme-ng builds the guest's initramfs with it
    "depmod": "kmod",
    "file": "file",  # virtme-ng reads the kernel's release with it
    "apt-get": "apt",
    "dpkg": "dpkg",
}
# The build options each feature needs. On x86-64 a BPF trampoline (fentry/fexit) is an ftrace
# direct call, and it finds its function through the kernel's BTF.
FEATURES = {
    "kprobes": ("CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"),
    "fentry": (
        "CONFIG_BPF_JIT",
        "CONFIG_DEBUG_INFO_BTF",
        "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    ),
}


class Unavailable(Exception):
    """Something the lane needs is missing; the message says what to install."""


# -- apt ------------------------------------------------------------------------------------


def parse_fields(text: str) -> dict[str, str]:
    """The fields of the first record of a Debian control text (``apt-cache show``)."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
        elif line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def depends(fields: dict[str, str]) -> list[str]:
    """The packages a record depends on: the first of each set of alternatives."""
    names = []
    for item in fields.get("Depends", "").split(","):
        first = item.split("|")[0].split()
        if first:
            names.append(first[0].split(":")[0])
    return names


def apt_fields(package: str) -> dict[str, str]:
    """The apt record of ``package``'s candidate version."""
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True
    )
    fields = parse_fields(result.stdout) if result.returncode == 0 else {}
    if "Version" not in fields:
        raise Unavailable(
            f"apt knows no package {package!r}: run `apt-get update`, or pick a kernel from "
            "`apt-cache search --names-only ^linux-image-`"
        )
    return fields


def resolve(package: str) -> tuple[str, str]:
    """The kernel image package that ``package`` (maybe a meta package such as
    ``linux-image-amd64``) stands for, and its version."""
    for _ in range(4):
        fields = apt_fields(package)
        images = [name for name in depends(fields) if name.startswith("linux-image-")]
        if not images:
            return package, fields["Version"]
        package = images[0]
    raise Unavailable(f"{package!r} does not lead to a kernel image package")


def apt_download(packages: list[str], directory: Path) -> list[Path]:
    cmd = ["apt-get", "download", "-q", *packages]
    if os.geteuid() == 0:  # apt's sandbox user could not write here
        cmd[1:1] = ["-o", "APT::Sandbox::User=root"]
    result = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
    if result.returncode != 0:
        raise Unavailable(f"apt-get download {' '.join(packages)} failed: {result.stderr.strip()}")
    return sorted(directory.glob("*.deb"))


# -- kernels --------------------------------------------------------------------------------


@dataclass
class Kernel:
    """A kernel image package unpacked in the cache, with its modules and headers."""

    name: str  # as asked for, maybe a meta package
    package: str
    version: str
    root: Path

    @property
    def release(self) -> str:
        return next((self.root / "boot").glob("vmlinuz-*")).name.removeprefix("vmlinuz-")

    @property
    def image(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    def config(self) -> dict[str, str]:
        text = (self.root / "boot" / f"config-{self.release}").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if line.startswith("CONFIG_"))

    def features(self) -> list[str]:
        """The features of :data:`FEATURES` that this kernel's build configuration enables."""
        config = self.config()
        return [name for name, opts in FEATURES.items() if all(config.get(o) == "y" for o in opts)]


def fetch(name: str) -> Kernel:
    """The kernel package ``name``, from the cache or downloaded and unpacked into it."""
    package, version = resolve(name)
    # virtme-ng takes only [A-Za-z0-9_+ /.-] in the paths it shares ("~" is common in versions).
    root = CACHE / re.sub(r"[^A-Za-z0-9_+./-]", "_", f"{package}_{version}")
    if not root.exists():
        print(f"test-kernels: fetching {package} {version} with apt", flush=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE, prefix=".fetch-") as tmp:
            tree = Path(tmp) / "root"
            unpack(package, Path(tmp), tree, root)
            if not root.exists():  # another lane may have fetched it meanwhile
                tree.rename(root)
    return Kernel(name, package, version, root)


def unpack(package: str, work: Path, tree: Path, final: Path) -> None:
    """Unpack kernel ``package`` and its headers into ``tree``, which will move to ``final``."""
    for deb in apt_download([package], _new_dir(work / "image")):
        subprocess.run(["dpkg", "-x", str(deb), str(tree)], check=True)
    release = next((tree / "boot").glob("vmlinuz-*")).name.removeprefix("vmlinuz-")
    headers = f"linux-headers-{release}"
    wanted = [headers, *(d for d in depends(apt_fields(headers)) if d.startswith("linux-headers-"))]
    for deb in apt_download(wanted, _new_dir(work / "headers")):
        subprocess.run(["dpkg", "-x", str(deb), str(tree)], check=True)
    # bcc looks for headers under /lib/modules/RELEASE/{build,source}: into the cache, since
    # the guest sees this tree there instead of the host's /lib/modules.
    modules = tree / "lib" / "modules" / release
    for link, target in (("build", headers), ("source", _common_headers(tree))):
        (modules / link).unlink(missing_ok=True)
        if target:
            (modules / link).symlink_to(final / "usr" / "src" / target)
    depmod = shutil.which("depmod", path=_sbin_path()) or "depmod"
    subprocess.run([depmod, "-b", str(tree), release], check=True)


def _common_headers(tree: Path) -> str:
    common = sorted((tree / "usr" / "src").glob("linux-headers-*-common"))
    return common[0].name if common else ""


def _new_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _sbin_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def missing_tools() -> list[str]:
    """What to install for each tool the lane needs and cannot find."""
    missing = [pkg for tool, pkg in TOOLS.items() if not shutil.which(tool, path=_sbin_path())]
    if not vng().exists():
        missing.append("virtme-ng (PyPI, into this virtualenv)")
    return missing


def vng() -> Path:
    return Path(sys.executable).parent / "vng"


def kvm_usable() -> bool:
    """Whether QEMU can use KVM: ``/dev/kvm``, backed by hardware virtualization (a KVM without
    it, such as a paravirtual one inside another VM, cannot run a stock kernel)."""
    if os.environ.get("BPFNB_KERNEL_KVM") == "0" or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "vmx" in flags or "svm" in flags


# -- running --------------------------------------------------------------------------------


@dataclass
class Result:
    """One kernel's run: its pytest counts, or why there are none."""

    kernel: str
    how: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem and not self.failed and self.passed > 0

    def line(self) -> str:
        counts = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        tail = f" - {self.problem}" if self.problem else ""
        return f"{self.kernel} ({self.how}): {counts} in {self.seconds:.0f}s{tail}"


def read_junit(path: Path, result: Result) -> Result:
    """``result`` with the counts of pytest's JUnit XML report at ``path``."""
    try:
        suite = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as err:
        result.problem = result.problem or f"no test report ({err})"
        return result
    if suite.tag == "testsuites":
        suite = suite[0]
    tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    result.failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    result.skipped = skipped
    result.passed = tests - result.failed - skipped
    return result


def pytest_command(junit: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=5"),
        f"--junitxml={junit}",
    ]


def run_on_host(out: Path, objects: Path) -> Result:
    """The selected tests on this machine's kernel; this builds the BPF objects too."""
    print(f"\n== test-kernels: {os.uname().release} (this machine) ==", flush=True)
    env = dict(os.environ, BPFNB_TEST_OBJECTS=str(objects))
    start = time.monotonic()
    cmd = [*pytest_command(out / "junit.xml"), *SELECTION]
    subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    result = Result(os.uname().release, "this machine", seconds=time.monotonic() - start)
    return read_junit(out / "junit.xml", result)


def guest_script(kernel: Kernel, out: Path, objects: Path) -> str:
    """The shell command the guest runs: pytest, its output and exit status into ``out``."""
    env = {
        "BPFNB_REQUIRE_KERNEL": "1",  # in the lane a skip proves nothing
        "BPFNB_EXPECT_FEATURES": ",".join(kernel.features()),
        "BPFNB_TEST_OBJECTS": str(objects),
        "BPFNB_TEST_OBJECTS_PREBUILT": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the guest sees this tree read-only
        "PYTHONUNBUFFERED": "1",  # the host prints the log as it grows
        "XDG_CACHE_HOME": "/tmp/bpfnb-cache",  # and $HOME too (vmlinux.h is cached there)
    }
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    pytest = shlex.join([*pytest_command(out / "junit.xml"), *SELECTION])
    log, status = shlex.quote(str(out / "pytest.log")), shlex.quote(str(out / "status"))
    run = f"env {assignments} {pytest} > {log} 2>&1; echo $? > {status}"
    return f"cd {shlex.quote(str(REPO))} && {run}"


def run_in_guest(kernel: Kernel, out: Path, objects: Path) -> Result:
    """Boot ``kernel`` under QEMU and run the selected tests in it."""
    how = "QEMU with KVM" if kvm_usable() else "QEMU without KVM"
    result = Result(kernel.release, f"{kernel.package} {kernel.version}, {how}")
    print(f"\n== test-kernels: {result.kernel} ({result.how}) ==", flush=True)
    cmd = [
        str(vng()),
        "--run",
        str(kernel.image),
        "--memory",
        "2G",
        "--cpus",
        str(min(2, os.cpu_count() or 1)),
        "--rwdir",
        str(out),
        "--rodir",
        f"/boot={kernel.root / 'boot'}",  # its config, for bpfnb's __kconfig support
        "--verbose",
        "--exec",
        guest_script(kernel, out, objects),
    ]
    if not kvm_usable():
        # QEMU 7.2 emulates AVX2 wrongly: numpy's AVX2 argsort returned wrong orders there.
        cmd += ["--disable-kvm", "--qemu-opts=-cpu max,avx2=off"]
    env = dict(os.environ, PATH=f"{vng().parent}:{os.environ.get('PATH', '')}")
    start = time.monotonic()
    with open(out / "console.log", "wb") as console:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        finished = follow(proc, out / "pytest.log", TIMEOUT)
    result.seconds = time.monotonic() - start
    status = out / "status"
    if not finished:
        result.problem = f"stopped after {TIMEOUT:.0f}s"
    elif not status.exists():
        result.problem = f"the guest did not finish; see {out / 'console.log'}"
        print(_tail(out / "console.log", 30), flush=True)
    return read_junit(out / "junit.xml", result)


def follow(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> bool:
    """Print ``log`` as it grows until ``proc`` exits; False if it ran past ``timeout``."""
    deadline = time.monotonic() + timeout
    offset = 0
    while True:
        exited = proc.poll() is not None
        if log.exists():
            with open(log, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        if exited:
            return True
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False
        time.sleep(1)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def new_run_dir() -> Path:
    """A fresh directory for this run's logs and objects; runs older than a day go."""
    runs = CACHE / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for old in runs.iterdir():
        if time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=runs, prefix=time.strftime("%Y%m%d-%H%M%S-")))


# -- the lane -------------------------------------------------------------------------------


def unavailable(reason: str) -> int:
    """Report that the lane cannot run: a failure under BPFNB_REQUIRE_KERNEL=1, else a skip."""
    print(f"test-kernels: {reason}", flush=True)
    if os.environ.get("BPFNB_REQUIRE_KERNEL") == "1":
        print("test-kernels: failed (BPFNB_REQUIRE_KERNEL=1)", flush=True)
        return 1
    print("test-kernels: skipped", flush=True)
    return 0


def main(argv: list[str]) -> int:
    names = argv or DEFAULT_KERNELS
    if platform.machine() != "x86_64":
        return unavailable(f"the lane boots x86-64 kernels only, not on {platform.machine()}")
    missing = missing_tools()
    if missing:
        return unavailable(f"missing {', '.join(missing)}; as root run: {INSTALL}")
    if os.geteuid() != 0:
        return unavailable("the kernel tests need root, here and in the guests")
    try:
        kernels = [fetch(name) for name in names]
    except Unavailable as err:
        return unavailable(str(err))
    run_dir = new_run_dir()
    objects = _new_dir(run_dir / "objects")
    results = [run_on_host(_new_dir(run_dir / "host"), objects)]
    for kernel in kernels:
        results.append(run_in_guest(kernel, _new_dir(run_dir / kernel.release), objects))
    print(f"\n== test-kernels summary (logs in {run_dir}) ==")
    for result in results:
        print(f"  {result.line()}")
    passed = sum(r.passed for r in results)
    failed = sum(r.failed + (1 if r.problem else 0) for r in results)
    print(f"test-kernels: {passed} passed, {failed} failed", flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
