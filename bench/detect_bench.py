"""Benchmark: plantsweep's scanner against Debian's yara CLI and a naive yara-python loop.

    .venv/bin/python bench/detect_bench.py [--corpus-size 3G] [--files N] [--threads 2]
        [--max-file-size 100M] [--source /usr] [--work /var/tmp/plantsweep-bench]
        [--rules DIR] [--tools cli,naive,plantsweep] [--runs 1] [--scaling]
        [--no-second-host] [--scanner-src DIR] [--keep] [--json]

What is measured. A corpus that nobody here wrote: regular files copied from --source (/usr),
chosen deterministically (the sorted walk, every k-th file, k set so that the whole tree is
sampled within the --corpus-size byte and --files count budgets; files over --max-file-size
are skipped), plus three planted EICAR test files (one under the copied tree, one at the top,
one as setup.exe in a subfolder). The corpus lives in WORK/corpus and is reused by later runs
with the same options (WORK/corpus.json records what it holds).

Rules: every .yar file of the public signature-base set (--rules, default
../shared/data/yara-rules/yara; Detection Rule License 1.1, see its LICENSE) plus plantsweep's
EICAR rule, one namespace per file (the file name), external variables filename, filepath,
extension, filetype and owner defined as empty strings. A file that does not compile with
Debian's yarac or with yara-python is left out for every tool and named.

Tools, in one run, with the same rule files, the same number of threads (--threads) and a
warm page cache (the corpus is read once, untimed, before the first tool; a second, timed
read gives the floor: walk + read on one thread):

1. Debian's yara CLI: rules compiled by `yarac -d filename= ...` (not timed), then
   `yara -e -C RULES -r -p THREADS CORPUS` (default scan mode, no fast mode).
2. a naive yara-python loop: the same rules compiled by yara-python and saved, loaded with
   yara.load(), then `rules.match(path)` per file in a ThreadPoolExecutor(THREADS).
3. plantsweep's scanner payload run locally: `python -m agentless_scanner --type folders
   --path CORPUS --patterns PATTERN_DIR --out LOG --max-size BIG [--threads THREADS]` (the
   flag only if its --help lists it). PATTERN_DIR holds the same rule files and, when
   orchestrator.bundles.build is there, the compiled sets and bundle.json a signed bundle
   carries, so the scanner loads compiled rules as on a plant host (else it compiles them,
   inside its wall time). It also hashes every file (SHA-256; SHA-1 and MD5 for findings) and
   collects asset information.

Every tool runs under its own short-lived Python wrapper process that times it and reports
the peak resident set (ru_maxrss of its only child) and its CPU time (user + system). With
--runs N the tools run interleaved N times and the median run (by wall time) is reported.
Hits are compared as (path, namespace, rule) sets on the rules that do not use external
variables (the CLI and the naive loop cannot set them per file, the scanner does); rules that
use them are found with a conservative regular expression and left out of the comparison.

--scaling also runs the scanner, and the yara CLI for reference, on the first 10,000 and the
first 100,000 files of the corpus (hard-linked subsets; a tenth and all of it when the corpus
is smaller: the counts are printed) and prints the time and peak memory of each.

Unless --no-second-host, the fleet verdict cache scenario runs when the scanner has
--verdicts and --files-out (see second_host_run): a first host's scan, the controller's
verdicts built from it, a second host with the same files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = str(ROOT / ".venv" / "bin" / "python")
DEFAULT_RULES = ROOT.parent / "shared" / "data" / "yara-rules" / "yara"
EICAR_RULE = ROOT / "orchestrator" / "data" / "patterns" / "eicar.yar"
sys.path.insert(0, str(ROOT))  # orchestrator (verdict cache), as in scan_fleet.py

EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
CORPUS_FORMAT = 3  # bump when the selection changes
MIB = 1024 * 1024

# The EICAR test string, assembled from hex so this file is never taken for the test file.
EICAR = bytes.fromhex(
    "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e44"
    "4152442d414e544956495255532d544553542d46494c452124482b482a"
)
EICAR_PLANTS = ("eicar.com", "usr/share/doc/eicar-test.txt", "eicar/downloads/invoice/setup.exe")
EICAR_RULE_NAME = "EICAR_Test_File"

# A bare identifier: not a string ($), count (#), offset (@) or length (!) reference, and not
# part of a longer word. Conservative: it also matches the word inside meta strings/comments.
EXTERNAL_RE = re.compile(r"(?<![\w$#@!])(?:" + "|".join(EXTERNALS) + r")(?!\w)")
RULE_RE = re.compile(r"^[ \t]*((?:(?:private|global)[ \t]+)*)rule[ \t]+(\w+)", re.MULTILINE)

# Run as `python -c WRAPPER OUT ERR CMD...`: times CMD, reports its peak RSS and CPU time. A
# fresh process per tool, so RUSAGE_CHILDREN holds that tool alone.
WRAPPER = """
import json, resource, subprocess, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "wb") as o, open(err, "wb") as e:
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, stdout=o, stderr=e)
    wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall_s": wall, "maxrss_kib": ru.ru_maxrss,
                  "cpu_s": ru.ru_utime + ru.ru_stime}))
"""


class BenchError(Exception):
    """The setup is wrong or a tool failed: the benchmark stops with this message."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- sizes ------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'3G' -> 3 GiB in bytes; K, M, G, T are powers of 1024, an optional B/iB is ignored."""
    found = _SIZE_RE.match(text)
    if not found:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 150M, 3G)")
    power = " kmgt".index(found.group(2).lower() or " ")
    return int(float(found.group(1)) * 1024**power)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- corpus -----------------------------------------------------------------------------


def list_regular_files(source: Path, max_file_size: int) -> list[tuple[str, int]]:
    """[(path relative to /, size)] of regular files under source, sorted walk, no symlinks."""
    found: list[tuple[str, int]] = []
    for top, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size <= max_file_size:
                found.append((os.path.relpath(path, "/"), st.st_size))
    return found


def select_files(
    candidates: Sequence[tuple[str, int]], max_bytes: int, max_files: int | None
) -> list[tuple[str, int]]:
    """Every k-th candidate, k (not only whole numbers) the smallest stride found whose
    selection fits both budgets, so that a small corpus still spans the whole tree."""

    def every(fraction: float) -> list[tuple[str, int]]:
        return [
            entry
            for index, entry in enumerate(candidates)
            if math.floor((index + 1) * fraction) > math.floor(index * fraction)
        ]

    def fits(chosen: list[tuple[str, int]]) -> bool:
        too_many = max_files is not None and len(chosen) > max_files
        return not too_many and sum(size for _, size in chosen) <= max_bytes

    best = every(1.0)
    if fits(best):
        return best
    low, high, best = 0.0, 1.0, []
    for _ in range(30):  # bisection on the fraction taken (the byte sum is not monotonic)
        middle = (low + high) / 2
        chosen = every(middle)
        if fits(chosen):
            low, best = middle, chosen
        else:
            high = middle
    return best


def walk_corpus(root: Path) -> tuple[int, int]:
    count = size = 0
    for top, _dirs, files in os.walk(root):
        for name in files:
            count += 1
            size += os.lstat(os.path.join(top, name)).st_size
    return count, size


def build_corpus(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Copy the selected files into WORK/corpus (or reuse it) and plant the EICAR files."""
    corpus = work / "corpus"
    manifest_path = work / "corpus.json"
    params = {
        "format": CORPUS_FORMAT,
        "source": str(args.source),
        "corpus_size": args.corpus_size,
        "files": args.files,
        "max_file_size": args.max_file_size,
    }
    if manifest_path.is_file() and corpus.is_dir():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == params and walk_corpus(corpus) == (
            len(manifest["files"]),
            manifest["bytes"],
        ):
            log(f"corpus: reusing {corpus} ({len(manifest['files'])} files)")
            return manifest
    log(f"corpus: listing {args.source} ...")
    candidates = list_regular_files(args.source, args.max_file_size)
    chosen = select_files(candidates, args.corpus_size - len(EICAR) * 4, args.files)
    log(f"corpus: copying {len(chosen)} of {len(candidates)} files into {corpus} ...")
    shutil.rmtree(corpus, ignore_errors=True)
    manifest_path.unlink(missing_ok=True)
    building = work / "corpus.partial"
    shutil.rmtree(building, ignore_errors=True)
    files: list[list[Any]] = []
    for rel, _size in chosen:
        target = building / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile("/" + rel, target)
            mode = os.stat("/" + rel).st_mode
        except OSError as exc:  # vanished or unreadable since the listing
            log(f"corpus: skipped /{rel}: {exc}")
            continue
        # Keep the exec bit (file type heuristics), never setuid/setgid bits.
        target.chmod(0o755 if mode & 0o111 else 0o644)
        files.append([rel, target.stat().st_size])
    for rel in EICAR_PLANTS:
        target = building / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(EICAR + b"\r\n")
        files.append([rel, target.stat().st_size])
    building.rename(corpus)
    manifest = {
        "params": params,
        "source_files": len(candidates),
        "source_bytes": sum(size for _, size in candidates),
        "files": files,
        "bytes": sum(size for _, size in files),
        "eicar": list(EICAR_PLANTS),
    }
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def read_all(root: Path) -> float:
    """Walk the corpus and read every file once on one thread; returns the seconds it took."""
    t0 = time.perf_counter()
    buf = bytearray(1 << 20)
    for top, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(top, name), "rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass
    return time.perf_counter() - t0


# -- rules ------------------------------------------------------------------------------


def yarac_compile(files: dict[str, Path], out: Path) -> tuple[bool, str]:
    cmd = ["yarac", "-w"]
    for name in EXTERNALS:
        cmd += ["-d", f"{name}="]
    cmd += [f"{ns}:{path}" for ns, path in sorted(files.items())]
    cmd.append(str(out))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def python_compile(yara: Any, files: dict[str, Path]) -> Any:
    externals = {name: "" for name in EXTERNALS}
    filepaths = {ns: str(path) for ns, path in files.items()}
    return yara.compile(filepaths=filepaths, externals=externals, includes=False)


def keep_compiling(files: dict[str, Path], compile_one) -> dict[str, str]:
    """Names of the files that do not compile alone (with the reason), via compile_one."""
    bad: dict[str, str] = {}
    for ns, path in sorted(files.items()):
        ok, reason = compile_one({ns: path})
        if not ok:
            bad[ns] = reason.splitlines()[0] if reason else "compile error"
    return bad


def prepare_rules(rules_dir: Path, work: Path) -> dict[str, Any]:
    """Check the rule files with both engines, write PATTERN_DIR and both compiled forms."""
    import yara

    files = {p.name: p for p in sorted(rules_dir.glob("*.yar")) + sorted(rules_dir.glob("*.yara"))}
    if not files:
        raise BenchError(f"no .yar files in {rules_dir}")
    if EICAR_RULE.name in files:
        raise BenchError(f"{rules_dir} already has a file named {EICAR_RULE.name}")
    files[EICAR_RULE.name] = EICAR_RULE
    rules_out = work / "rules"
    shutil.rmtree(rules_out, ignore_errors=True)
    rules_out.mkdir(parents=True)
    cli_rules = rules_out / "yara-cli.yarc"
    py_rules = rules_out / "yara-python.yarc"

    def with_yarac(subset: dict[str, Path]) -> tuple[bool, str]:
        return yarac_compile(subset, rules_out / "probe.yarc")

    def with_python(subset: dict[str, Path]) -> tuple[bool, str]:
        try:
            python_compile(yara, subset)
            return True, ""
        except yara.Error as exc:
            return False, str(exc)

    left_out: dict[str, dict[str, str]] = {}
    good = dict(files)
    for engine, compile_one in (("yarac", with_yarac), ("yara-python", with_python)):
        ok, _ = compile_one(good)
        if not ok:  # find the culprits one file at a time, as the scanner does
            bad = keep_compiling(good, compile_one)
            left_out[engine] = bad
            good = {ns: p for ns, p in good.items() if ns not in bad}
    (rules_out / "probe.yarc").unlink(missing_ok=True)

    t0 = time.perf_counter()
    ok, reason = yarac_compile(good, cli_rules)
    yarac_s = time.perf_counter() - t0
    if not ok:
        raise BenchError(f"yarac failed on the remaining rule files: {reason}")
    t0 = time.perf_counter()
    compiled = python_compile(yara, good)
    python_s = time.perf_counter() - t0
    compiled.save(str(py_rules))
    rule_count = sum(1 for _ in compiled)

    patterns = work / "patterns"
    shutil.rmtree(patterns, ignore_errors=True)
    patterns.mkdir()
    for ns, path in good.items():
        shutil.copyfile(path, patterns / ns)
    licence = rules_dir.parent / "LICENSE"
    if licence.is_file():  # the Detection Rule License asks for it to travel with the rules
        shutil.copyfile(licence, patterns / "LICENSE-signature-base")

    shipped = ship_compiled(patterns, good)
    external_rules = rules_using_externals(good)
    return {
        "scanner_rules": shipped,
        "dir": str(rules_dir),
        "files": len(good),
        "rules": rule_count,
        "left_out": left_out,
        "external_rules": sorted(f"{ns}:{rule}" for ns, rule in external_rules),
        "yarac_s": yarac_s,
        "yara_python_compile_s": python_s,
        "cli_compiled": str(cli_rules),
        "python_compiled": str(py_rules),
        "pattern_dir": str(patterns),
        "yara_python": yara.__version__,
        "libyara_python": yara.YARA_VERSION,
    }


def ship_compiled(patterns: Path, files: dict[str, Path]) -> str:
    """Add the compiled sets and bundle.json that `plantsweep patterns build` puts in a bundle,
    so the scanner loads compiled rules as on a plant host; returns how it gets its rules."""
    try:
        from orchestrator.bundles.build import compile_yara, compiled_files
    except ImportError as exc:
        return f"compiles from source (no bundle compiler: {exc})"
    sources = [(ns, path.read_bytes()) for ns, path in sorted(files.items())]
    compiled = compile_yara(sources, patterns)
    if compiled.broken:
        return f"compiles from source (bundle compiler: {len(compiled.broken)} broken files)"
    for rel, data in compiled_files(compiled):
        target = patterns / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    bundle = {
        "name": "signature-base-bench",
        "version": "1",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "libyara": compiled.libyara,
        "content_rules": compiled.content_rules,
        "path_rules": compiled.path_rules,
    }
    (patterns / "bundle.json").write_text(json.dumps(bundle, indent=1))
    return (
        f"loads compiled rules ({compiled.content_rules} content + {compiled.path_rules} path "
        f"rules, {compiled.non_pe_rules} of them for non-PE files, libyara {compiled.libyara})"
    )


def rules_using_externals(files: dict[str, Path]) -> set[tuple[str, str]]:
    """(namespace, rule) of rules whose result may depend on an external variable.

    A rule counts if its text names one, if it references a rule that does (same file), or
    if its file has a global rule that does. Over-counting only shrinks the comparison."""
    found: set[tuple[str, str]] = set()
    for ns, path in files.items():
        text = path.read_text(errors="replace")
        starts = list(RULE_RE.finditer(text))
        bodies: dict[str, str] = {}
        is_global: dict[str, bool] = {}
        for index, start in enumerate(starts):
            end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
            bodies[start.group(2)] = text[start.end() : end]
            is_global[start.group(2)] = "global" in start.group(1)
        tainted = {name for name, body in bodies.items() if EXTERNAL_RE.search(body)}
        changed = True
        while changed:
            changed = False
            for name, body in bodies.items():
                if name not in tainted and any(
                    re.search(rf"(?<![\w$#@!]){re.escape(t)}(?!\w)", body) for t in tainted
                ):
                    tainted.add(name)
                    changed = True
        if any(is_global[name] for name in tainted):
            tainted = set(bodies)
        found.update((ns, name) for name in tainted)
    return found


# -- running the tools ------------------------------------------------------------------


def measured(cmd: Sequence[str], out: Path, err: Path, cwd: Path | None = None) -> dict[str, Any]:
    """Run cmd under a fresh wrapper process; its stdout/stderr go to out/err."""
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), str(err), *cmd],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    if proc.returncode != 0:
        raise BenchError(f"wrapper failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


Hit = tuple[str, str, str]  # (path relative to the corpus, namespace, rule)


def run_cli(corpus: Path, rules: dict[str, Any], threads: int, run_dir: Path) -> dict[str, Any]:
    cmd = ["yara", "-e", "-C", rules["cli_compiled"], "-r", "-p", str(threads), str(corpus)]
    out, err = run_dir / "yara-cli.out", run_dir / "yara-cli.err"
    figures = measured(cmd, out, err)
    if figures["rc"] != 0:
        raise BenchError(f"yara CLI exited {figures['rc']}:\n{tail(err)}")
    hits: set[Hit] = set()
    for line in out.read_text(errors="surrogateescape").splitlines():
        qualified, _, path = line.partition(" ")
        ns, _, rule = qualified.rpartition(":")
        hits.add((os.path.relpath(path, corpus), ns, rule))
    errors = sum(1 for line in err.read_text(errors="replace").splitlines() if line.strip())
    version = subprocess.run(["yara", "--version"], capture_output=True, text=True).stdout
    return {
        "tool": f"yara {version.strip()} CLI",
        "command": cmd,
        **figures,
        "hits": hits,
        "errors": errors,
        "files": None,
    }


def run_naive(corpus: Path, rules: dict[str, Any], threads: int, run_dir: Path) -> dict[str, Any]:
    spec = run_dir / "naive-spec.json"
    hits_file = run_dir / "naive.hits"
    spec.write_text(
        json.dumps(
            {
                "corpus": str(corpus),
                "rules": rules["python_compiled"],
                "threads": threads,
                "hits": str(hits_file),
            }
        )
    )
    cmd = [VENV_PYTHON, str(Path(__file__).resolve()), "--naive-child", str(spec)]
    out, err = run_dir / "naive.out", run_dir / "naive.err"
    figures = measured(cmd, out, err)
    if figures["rc"] != 0:
        raise BenchError(f"naive yara-python loop exited {figures['rc']}:\n{tail(err)}")
    stats = json.loads(out.read_text().strip().splitlines()[-1])
    hits: set[Hit] = set()
    for line in hits_file.read_text(errors="surrogateescape").splitlines():
        qualified, _, path = line.partition("\t")
        ns, _, rule = qualified.rpartition(":")
        hits.add((os.path.relpath(path, corpus), ns, rule))
    return {
        "tool": f"yara-python {rules['yara_python']} pool",
        "command": cmd,
        **figures,
        "hits": hits,
        "errors": stats["errors"],
        "files": stats["files"],
        "load_s": stats["load_s"],
    }


def naive_child(spec_path: str) -> int:
    """The naive loop (run in its own process): rules.match(path) per file in a pool."""
    import yara

    spec = json.loads(Path(spec_path).read_text())
    t0 = time.perf_counter()
    rules = yara.load(spec["rules"])
    load_s = time.perf_counter() - t0
    paths = []
    for top, dirs, files in os.walk(spec["corpus"]):
        dirs.sort()
        paths.extend(os.path.join(top, name) for name in sorted(files))

    def scan(path: str) -> list[Any] | str:
        try:
            return rules.match(path)
        except yara.Error as exc:
            return str(exc)

    errors = 0
    with (
        ThreadPoolExecutor(spec["threads"]) as pool,
        open(spec["hits"], "w", errors="surrogateescape") as out,
    ):
        for path, result in zip(paths, pool.map(scan, paths), strict=True):
            if isinstance(result, str):
                errors += 1
                continue
            for match in result:
                out.write(f"{match.namespace}:{match.rule}\t{path}\n")
    print(json.dumps({"files": len(paths), "errors": errors, "load_s": load_s}))
    return 0


# Where `python -m agentless_scanner` is run from (its folder comes first on sys.path).
SCANNER_SRC = ROOT
_help_cache: dict[Path, str] = {}


def scanner_help() -> str:
    if SCANNER_SRC not in _help_cache:
        proc = subprocess.run(
            [VENV_PYTHON, "-m", "agentless_scanner", "--help"],
            capture_output=True,
            text=True,
            cwd=SCANNER_SRC,
        )
        if proc.returncode != 0:
            raise BenchError(f"the scanner's --help failed:\n{proc.stderr[-1500:]}")
        _help_cache[SCANNER_SRC] = proc.stdout
    return _help_cache[SCANNER_SRC]


def scanner_flag(flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", scanner_help()) is not None


def scanner_cmd(
    paths: Sequence[Path], patterns: str, out: Path, max_size: int, threads: int, *extra: str
) -> list[str]:
    cmd = [VENV_PYTHON, "-m", "agentless_scanner", "--type", "folders"]
    for path in paths:
        cmd += ["--path", str(path)]
    cmd += ["--patterns", patterns, "--out", str(out), "--max-size", str(max_size)]
    if scanner_flag("--threads"):
        cmd += ["--threads", str(threads)]
    return [*cmd, *extra]


def yara_hits_of(finding: dict[str, Any]) -> list[tuple[str, str]]:
    """(namespace, rule) of the YARA matches of one finding, old or new finding format."""
    # Before the one-finding-per-file format there was one finding per hit.
    matches = finding.get("matches")
    entries = matches if isinstance(matches, list) else [finding]
    return [(m.get("source", ""), m["rule"]) for m in entries if m.get("engine") == "yara"]


def read_scan_log(path: Path, corpus: Path) -> tuple[dict[str, Any], set[Hit]]:
    doc = json.loads(path.read_text())
    hits: set[Hit] = set()
    for finding in doc.get("findings", []):
        if finding.get("archive_member"):
            continue  # the CLI does not look inside archives
        rel = os.path.relpath(finding["path"], corpus)
        hits.update((rel, ns, rule) for ns, rule in yara_hits_of(finding))
    return doc, hits


def run_scanner(
    corpus: Path,
    rules: dict[str, Any],
    threads: int,
    run_dir: Path,
    max_size: int,
    name: str = "plantsweep",
    paths: Sequence[Path] | None = None,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    scan_log = run_dir / f"{name}.json"
    scan_log.unlink(missing_ok=True)
    cmd = scanner_cmd(paths or [corpus], rules["pattern_dir"], scan_log, max_size, threads, *extra)
    out, err = run_dir / f"{name}.out", run_dir / f"{name}.err"
    figures = measured(cmd, out, err, cwd=SCANNER_SRC)
    if not scan_log.is_file():
        raise BenchError(f"the scanner exited {figures['rc']} without a log:\n{tail(err)}")
    doc, hits = read_scan_log(scan_log, corpus)
    if not doc.get("complete", False):
        raise BenchError(f"the scanner's log is partial: {doc.get('errors', [])[:3]}")
    pattern_errors = doc.get("patterns", {}).get("errors", [])
    if pattern_errors:
        raise BenchError(f"the scanner reported pattern errors: {pattern_errors[:3]}")
    stats = doc.get("stats", {})
    engine = doc.get("engines", {}).get("yara", {})
    return {
        "tool": "plantsweep scanner",
        "compiled_from": engine.get("compiled_from"),
        "compile_note": engine.get("compile_note"),
        "command": cmd,
        **figures,
        "hits": hits,
        "errors": stats.get("errors", 0),
        "files": stats.get("files_scanned"),
        "rules_loaded": engine.get("rules_loaded"),
        "log": doc,
    }


# -- comparison and output --------------------------------------------------------------


def comparable(hits: set[Hit], external: set[str]) -> set[Hit]:
    return {h for h in hits if f"{h[1]}:{h[2]}" not in external}


def eicar_found(hits: set[Hit]) -> list[str]:
    return sorted(h[0] for h in hits if h[2] == EICAR_RULE_NAME)


def median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower middle one for an even count)."""
    ordered = sorted(results, key=lambda r: r["wall_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs_wall_s"] = [round(r["wall_s"], 3) for r in results]
    return chosen


def summarize(
    result: dict[str, Any], manifest: dict[str, Any], cli: dict[str, Any] | None, external: set[str]
) -> dict[str, Any]:
    wall = result["wall_s"]
    files, size = len(manifest["files"]), manifest["bytes"]
    mine = comparable(result["hits"], external)
    row: dict[str, Any] = {
        "tool": result["tool"],
        "command": " ".join(result["command"]),
        "wall_s": round(wall, 3),
        "cpu_s": round(result["cpu_s"], 3),
        "files_per_s": round(files / wall, 1),
        "mib_per_s": round(size / MIB / wall, 2),
        "peak_rss_mib": round(result["maxrss_kib"] / 1024, 1),
        "hits": len(result["hits"]),
        "compared_hits": len(mine),
        "eicar_found": eicar_found(result["hits"]),
        "errors": result["errors"],
        "files_scanned": result["files"],
    }
    for key in ("load_s", "rules_loaded", "compiled_from", "compile_note", "runs_wall_s"):
        if key in result:
            row[key] = result[key]
    if cli is not None:
        theirs = comparable(cli["hits"], external)
        row["throughput_vs_cli"] = round(cli["wall_s"] / wall, 2)
        row["memory_vs_cli"] = round(result["maxrss_kib"] / cli["maxrss_kib"], 2)
        # CPU seconds per corpus: the fairer figure when other processes share the CPUs.
        row["cpu_vs_cli"] = round(cli["cpu_s"] / result["cpu_s"], 2)
        row["same_hits_as_cli"] = mine == theirs
        row["missing_vs_cli"] = [list(h) for h in sorted(theirs - mine)[:20]]
        row["extra_vs_cli"] = [list(h) for h in sorted(mine - theirs)[:20]]
        row["missing_count"] = len(theirs - mine)
        row["extra_count"] = len(mine - theirs)
    return row


def print_tools(report: dict[str, Any]) -> None:
    """The table of tools, the ratios and the hit comparison."""
    corpus, rules = report["corpus"], report["rules"]
    head = (
        f"{'tool':<28}{'wall s':>8}{'cpu s':>8}{'files/s':>9}{'MiB/s':>8}"
        f"{'peak MiB':>10}{'hits':>6}{'cmp':>6}{'speed vs CLI':>14}{'cpu vs CLI':>12}"
        f"{'mem vs CLI':>12}"
    )
    print(head)
    for row in report["tools"]:
        speed = f"{row['throughput_vs_cli']:.2f}x" if "throughput_vs_cli" in row else "-"
        memory = f"{row['memory_vs_cli']:.2f}x" if "memory_vs_cli" in row else "-"
        cpu = f"{row['cpu_vs_cli']:.2f}x" if "cpu_vs_cli" in row else "-"
        print(
            f"{row['tool']:<28}{row['wall_s']:>8.2f}{row['cpu_s']:>8.2f}"
            f"{row['files_per_s']:>9.0f}{row['mib_per_s']:>8.1f}{row['peak_rss_mib']:>10.0f}"
            f"{row['hits']:>6}{row['compared_hits']:>6}{speed:>14}{cpu:>12}{memory:>12}"
        )
    print(
        f"hits compared on the {rules['rules'] - len(rules['external_rules'])} rules that do not "
        f"use external variables ({len(rules['external_rules'])} do: the CLI and the naive loop "
        "see them as empty strings, the scanner sets them per file)"
    )
    for row in report["tools"]:
        if "same_hits_as_cli" in row:
            verdict = (
                "identical to the CLI"
                if row["same_hits_as_cli"]
                else f"{row['missing_count']} missing, {row['extra_count']} extra vs the CLI"
            )
            print(f"  {row['tool']}: {verdict}")
            for label in ("missing_vs_cli", "extra_vs_cli"):
                for path, ns, rule in row[label][:5]:
                    print(f"    {label.split('_')[0]}: {ns}:{rule} {path}")
        found = len(row["eicar_found"])
        print(f"  {row['tool']}: EICAR found in {found} of {len(corpus['eicar'])} planted files")


def print_table(report: dict[str, Any]) -> None:
    corpus, rules = report["corpus"], report["rules"]
    print(
        f"\ndetection bench: {corpus['files']} files, {human(corpus['bytes'])} "
        f"({corpus['selection']}), {rules['rules']} rules from {rules['files']} files, "
        f"{report['threads']} threads, warm page cache"
    )
    print(
        f"floor (walk + read, 1 thread): {corpus['read_s']:.2f} s; median of {report['runs']} "
        f"run(s); load average {report['load_average'][0]} before, "
        f"{report['load_average'][1]} after ({report['cpus']} CPUs)"
    )
    if report["load_average"][0] > 0.5:
        print("note: other processes were using the CPU when the runs started: figures are noisy")
    if report["tools"]:
        print_tools(report)
    for engine, bad in rules["left_out"].items():
        for ns, reason in sorted(bad.items()):
            print(f"left out (does not compile with {engine}): {ns}: {reason}")
    print(
        f"compile (not in the CLI's wall): yarac {rules['yarac_s']:.2f} s; "
        f"yara-python {rules['yara_python_compile_s']:.2f} s"
    )
    for row in report["tools"]:
        print(f"  {row['tool']}: {row['command']}")
        if row.get("compiled_from"):
            how = (
                rules["scanner_rules"] if row["compiled_from"] == "bundle" else row["compile_note"]
            )
            print(f"    rules: {row['compiled_from']}: {how}")
    for line in report.get("scaling", {}).get("lines", []):
        print(line)
    if report.get("second_host"):
        print(report["second_host"]["line"])


# -- memory scaling ---------------------------------------------------------------------


def scaling_counts(available: int) -> list[int]:
    counts = sorted({min(n, available) for n in (10_000, 100_000)})
    if len(counts) < 2:  # a small corpus: a tenth of it and all of it
        counts = [max(1, available // 10), available]
    return counts


def subset_tree(corpus: Path, files: Sequence[Sequence[Any]], count: int, target: Path) -> None:
    """The first count corpus files, hard-linked (copied if linking fails) under target."""
    shutil.rmtree(target, ignore_errors=True)
    for entry in files[:count]:
        dest = target / entry[0]
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(corpus / entry[0], dest)
        except OSError:
            shutil.copyfile(corpus / entry[0], dest)


def run_scaling(
    corpus: Path,
    manifest: dict[str, Any],
    rules: dict[str, Any],
    args: argparse.Namespace,
    work: Path,
    run_dir: Path,
) -> dict[str, Any]:
    rows = []
    lines = ["memory scaling (same rules and threads; the yara CLI for reference):"]
    for count in scaling_counts(len(manifest["files"])):
        tree = work / "scaling" / str(count)
        subset_tree(corpus, manifest["files"], count, tree)
        size = sum(entry[1] for entry in manifest["files"][:count])
        for tool, result in (
            (
                "plantsweep",
                run_scanner(
                    tree, rules, args.threads, run_dir, args.max_file_size, name=f"scaling-{count}"
                ),
            ),
            ("yara CLI", run_cli(tree, rules, args.threads, run_dir)),
        ):
            row = {
                "tool": tool,
                "files": count,
                "bytes": size,
                "wall_s": round(result["wall_s"], 3),
                "cpu_s": round(result["cpu_s"], 3),
                "peak_rss_mib": round(result["maxrss_kib"] / 1024, 1),
            }
            rows.append(row)
            lines.append(
                f"  {tool:<11} first {count} files ({human(size)}): {row['wall_s']:.2f} s wall, "
                f"{row['cpu_s']:.2f} s CPU, peak {row['peak_rss_mib']:.0f} MiB"
            )
    shutil.rmtree(work / "scaling", ignore_errors=True)
    return {"rows": rows, "lines": lines}


# -- second host (fleet verdict cache) --------------------------------------------------


def build_verdicts_file(files_out: Path, scan_log: Path, verdicts_out: Path) -> None:
    """Turn run 1's --files-out index and log into a --verdicts file, as the controller does:
    a private VerdictCache absorbs the first host's scan and exports the verdicts."""
    from orchestrator.verdict_cache import VerdictCache, read_files_index

    cache = VerdictCache(verdicts_out.parent / "verdict-cache")
    cache.absorb("host1", files_out, json.loads(scan_log.read_text()))
    header, _entries = read_files_index(files_out)
    if not cache.export(header.get("rules_id"), verdicts_out):
        raise BenchError("the verdict cache learned nothing from the first run")


def file_states(files_out: Path) -> dict[str, int]:
    """How many files of a --files-out index are in each state (clean, matched, cached...)."""
    counts: dict[str, int] = {}
    with gzip.open(files_out, "rt", encoding="utf-8") as fh:
        fh.readline()  # the header
        for line in fh:
            if line.strip():
                state = json.loads(line)[5]
                counts[state] = counts.get(state, 0) + 1
    return counts


def second_host_run(
    corpus: Path, rules: dict[str, Any], args: argparse.Namespace, run_dir: Path
) -> dict[str, Any]:
    """A second host with the same files: run 1 writes its file index, the controller turns it
    into verdicts, run 2 gets them and should skip content matching (target: 10x faster)."""
    if not (scanner_flag("--verdicts") and scanner_flag("--files-out")):
        return {"line": "second-host run: not available in this build"}
    try:
        import orchestrator.verdict_cache  # noqa: F401  (the lead's module)
    except ImportError as exc:
        return {"line": f"second-host run: skipped, orchestrator.verdict_cache: {exc}"}
    index = run_dir / "idx1.gz"
    verdicts = run_dir / "verdicts.gz"
    index2 = run_dir / "idx2.gz"

    def host(name: str, *extra: str) -> dict[str, Any]:
        return run_scanner(
            corpus, rules, args.threads, run_dir, args.max_file_size, name=name, extra=extra
        )

    firsts = [host("host1", "--files-out", str(index))]
    try:
        build_verdicts_file(index, run_dir / "host1.json", verdicts)
    except (ImportError, AttributeError, TypeError) as exc:  # its API changed: say so
        return {"line": f"second-host run: skipped, verdict cache API: {exc}"}
    seconds = []
    for index_run in range(args.runs):  # interleaved like the main runs
        if index_run:
            firsts.append(host("host1", "--files-out", str(index)))
        seconds.append(host("host2", "--verdicts", str(verdicts), "--files-out", str(index2)))
    first, second = median_run(firsts), median_run(seconds)
    same = all(r["hits"] == firsts[0]["hits"] for r in firsts + seconds)
    speedup = first["wall_s"] / second["wall_s"]
    # Each second host against the first host run just before it (interleaved).
    ratios = [f["wall_s"] / s["wall_s"] for f, s in zip(firsts, seconds, strict=True)]
    cpu_speedup = first["cpu_s"] / second["cpu_s"]
    states = file_states(index2)
    return {
        "second_file_states": states,
        "first_wall_s": round(first["wall_s"], 3),
        "second_wall_s": round(second["wall_s"], 3),
        "first_cpu_s": round(first["cpu_s"], 3),
        "second_cpu_s": round(second["cpu_s"], 3),
        "second_peak_rss_mib": round(second["maxrss_kib"] / 1024, 1),
        "first_runs_wall_s": [round(r["wall_s"], 3) for r in firsts],
        "second_runs_wall_s": [round(r["wall_s"], 3) for r in seconds],
        "speedups": [round(ratio, 2) for ratio in ratios],
        "speedup": round(speedup, 2),
        "cpu_speedup": round(cpu_speedup, 2),
        "same_hits": same,
        "line": (
            f"second-host run (verdict cache, median of {args.runs}): first "
            f"{first['wall_s']:.2f} s ({first['cpu_s']:.2f} s CPU), second "
            f"{second['wall_s']:.2f} s ({second['cpu_s']:.2f} s CPU): {speedup:.1f}x faster "
            f"({cpu_speedup:.1f}x less CPU; run by run "
            + ", ".join(f"{ratio:.1f}x" for ratio in ratios)
            + f"), hits {'identical' if same else 'DIFFERENT'}; "
            "second run's files: "
            + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        ),
    }


# -- main -------------------------------------------------------------------------------


def ensure_yara_cli(install: bool) -> None:
    if shutil.which("yara") and shutil.which("yarac"):
        return
    if not install:
        raise BenchError("the yara CLI is missing: apt-get install -y yara")
    log("installing Debian's yara (apt-get install -y yara) ...")
    proc = subprocess.run(
        ["apt-get", "install", "-y", "yara"],
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if proc.returncode != 0 or not shutil.which("yara"):
        raise BenchError(f"apt-get install -y yara failed:\n{proc.stderr[-1500:]}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - {"cli", "naive", "plantsweep"}
    if unknown:
        raise BenchError(f"unknown --tools {sorted(unknown)}: use cli, naive, plantsweep")
    ensure_yara_cli(install=not args.no_install)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    manifest = build_corpus(args, work)
    corpus = work / "corpus"
    log("rules: checking and compiling with yarac and yara-python ...")
    rules = prepare_rules(args.rules, work)
    external = set(rules["external_rules"])
    log("warm-up read of the corpus (untimed) ...")
    read_all(corpus)
    read_s = read_all(corpus)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    ways = {
        "cli": ("the yara CLI", lambda: run_cli(corpus, rules, args.threads, run_dir)),
        "naive": (
            "the naive yara-python loop",
            lambda: run_naive(corpus, rules, args.threads, run_dir),
        ),
        "plantsweep": (
            "plantsweep's scanner",
            lambda: run_scanner(corpus, rules, args.threads, run_dir, args.max_file_size),
        ),
    }
    chosen = [name for name in ways if name in tools]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    load_before = os.getloadavg()[0]
    for index in range(args.runs):  # interleaved, so a burst of load hits every tool alike
        for name in chosen:
            log(f"run {index + 1}/{args.runs}: {ways[name][0]} ...")
            runs[name].append(ways[name][1]())
    load_after = os.getloadavg()[0]
    results = [median_run(runs[name]) for name in chosen]
    cli = results[0] if chosen and chosen[0] == "cli" else None
    source_files = manifest["source_files"]
    stride = source_files / max(1, len(manifest["files"]) - len(manifest["eicar"]))
    report: dict[str, Any] = {
        "threads": args.threads,
        "corpus": {
            "path": str(corpus),
            "files": len(manifest["files"]),
            "bytes": manifest["bytes"],
            "selection": (
                f"every {stride:.1f}th of {source_files} files of {args.source} "
                f"<= {human(args.max_file_size)}, + {len(manifest['eicar'])} EICAR"
            ),
            "eicar": manifest["eicar"],
            "read_s": round(read_s, 3),
        },
        "rules": {k: v for k, v in rules.items() if not k.endswith(("_compiled", "pattern_dir"))},
        "tools": [summarize(r, manifest, cli, external) for r in results],
        "run_dir": str(run_dir) if args.keep else None,
        "runs": args.runs,
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
    }
    if args.scaling:
        log("memory scaling runs ...")
        report["scaling"] = run_scaling(corpus, manifest, rules, args, work, run_dir)
    if not args.no_second_host:
        log("second-host run ...")
        report["second_host"] = second_host_run(corpus, rules, args, run_dir)
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--corpus-size",
        type=parse_size,
        default=parse_size("3G"),
        help="byte budget of the corpus (K/M/G suffixes, powers of 1024; default 3G)",
    )
    ap.add_argument("--files", type=int, help="file count budget of the corpus")
    ap.add_argument(
        "--max-file-size",
        type=parse_size,
        default=parse_size("100M"),
        help="skip source files larger than this (default 100M)",
    )
    ap.add_argument("--source", type=Path, default=Path("/usr"))
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/plantsweep-bench"))
    ap.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1, help="runs per tool, median (default 1)")
    ap.add_argument("--tools", default="cli,naive,plantsweep")
    ap.add_argument(
        "--scaling",
        action="store_true",
        help="also run the scanner (and the yara CLI) on the first 10k and 100k files",
    )
    ap.add_argument(
        "--no-second-host",
        action="store_true",
        help="skip the verdict cache scenario (run when the scanner supports it)",
    )
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the run dir (tool outputs, logs)")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install yara")
    ap.add_argument(
        "--scanner-src",
        type=Path,
        default=ROOT,
        help="folder holding the agentless_scanner package to run (default: this checkout)",
    )
    ap.add_argument("--naive-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.naive_child:
        return naive_child(args.naive_child)
    if args.threads < 1 or args.runs < 1:
        ap.error("--threads and --runs must be >= 1")
    global SCANNER_SRC
    SCANNER_SRC = args.scanner_src.resolve()
    try:
        report = run(args)
    except BenchError as exc:
        print(f"detect_bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
