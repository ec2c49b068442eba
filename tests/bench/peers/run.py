#!/usr/bin/env python3
"""make bench-peers: azbatch side by side with az, the Node SDK and the
Python SDK, every tool against one local emulator (loopback, dev account,
Shared Key). Installs the peers on request, runs each scenario per tool,
prints a Markdown table and writes build/bench-peers.{md,json,svg}.
docs/benchmarks.md explains the method.

Environment (defaults are the issue's sizes):
  PEERS_RUNS=3        timed runs per tool and scenario (the median is shown)
  PEERS_SHOW_RUNS=11  timed runs of the cold pool show
  PEERS_CRUD=20 PEERS_LIST=1000 PEERS_PAGE=100 PEERS_GETS=2000 PEERS_CONC=32
  PEERS_AUDIT_POOLS=100 PEERS_AUDIT_NODES=100 PEERS_AUDIT_CONC=16
  PEERS_BG_NODES=10 PEERS_BG_INTERVAL=1
  PEERS_CLI_FANOUT=1  also run the GETs with a CLI process per GET (xargs -P)
  PEERS_SCENARIOS=show,crud,...  PEERS_TOOLS=azbatch,az,...  a subset
run.py --report redraws the table and the chart from build/bench-peers.json.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
HERE = "tests/bench/peers"
WORK = "build/peers"
NPM_PREFIX = WORK + "/npm"
ACCOUNT = "devbatch"
KEY = "YXpiYXRjaC1lbXVsYXRvci13ZWxsLWtub3duLWRldmVsb3BtZW50LWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Ng=="
SDK_PYTHON = "/usr/bin/python3"       # Debian's: the one that imports Debian's azure-batch


def env_int(name, default):
    return int(os.environ.get(name, default))


RUNS = env_int("PEERS_RUNS", 3)
SHOW_RUNS = env_int("PEERS_SHOW_RUNS", 11)
CRUD, LIST, PAGE = env_int("PEERS_CRUD", 20), env_int("PEERS_LIST", 1000), env_int("PEERS_PAGE", 100)
GETS, CONC = env_int("PEERS_GETS", 2000), env_int("PEERS_CONC", 32)
AUDIT_POOLS, AUDIT_NODES = env_int("PEERS_AUDIT_POOLS", 100), env_int("PEERS_AUDIT_NODES", 100)
AUDIT_CONC = env_int("PEERS_AUDIT_CONC", 16)
BG_NODES, BG_INTERVAL = env_int("PEERS_BG_NODES", 10), env_int("PEERS_BG_INTERVAL", 1)
FANOUT = os.environ.get("PEERS_CLI_FANOUT") == "1"
# blue-green's target image (the blue pool's is 20.04: azbatch.lua's OLD_IMAGE)
BG_IMAGE, BG_AGENT = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest", "batch.node.ubuntu 22.04"

# (key, label): the bars of the chart, in this order
TOOLS = [("azbatch", "azbatch Lua"), ("azbatch-cli", "azbatch CLI"), ("az", "az batch"),
         ("node", "Node SDK"), ("python", "Python SDK")]
PEERS = ("az", "node", "python")
LABEL = dict(TOOLS)


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


# {=== installing the peers on request ===}

def install():
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    sdk = subprocess.run([SDK_PYTHON, "-c", "import azure.batch"], capture_output=True).returncode == 0
    missing = [pkg for pkg, ok in (("azure-cli", shutil.which("az") and sdk), ("gnuplot-nox", shutil.which("gnuplot")),
                                   ("nodejs", shutil.which("node")), ("npm", shutil.which("npm"))) if not ok]
    if missing:
        log("installing %s with apt-get (azure-cli takes minutes)" % " ".join(missing))
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if not os.path.exists(NPM_PREFIX + "/node_modules/@azure/batch/package.json"):
        log("installing @azure/batch with npm into " + NPM_PREFIX)
        os.makedirs(NPM_PREFIX, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", NPM_PREFIX, "--no-audit", "--no-fund", "--loglevel=error",
                        "@azure/batch@>=10"], check=True, stdout=sys.stderr)


def versions():
    def out(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else "?"
    with open(NPM_PREFIX + "/node_modules/@azure/batch/package.json") as f:
        npm_batch = json.load(f)["version"]
    return {
        "azbatch": out(["git", "describe", "--always", "--dirty"]),
        "az": "azure-cli " + out(["dpkg-query", "-W", "-f=${Version}", "azure-cli"]),
        "python": "azure-batch " + out([SDK_PYTHON, "-c", "import azure.batch; print(azure.batch.VERSION)"])
                  + ", " + out([SDK_PYTHON, "--version"]),
        "node": "@azure/batch " + npm_batch + ", node " + out(["node", "--version"]),
        "lua": " ".join(out(["lua5.4", "-v"]).split()[:2]),
    }


# {=== the emulator ===}

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))     # loopback: never a proxy


class Emulator:
    def __init__(self):
        # The dev world, its account empty and with room for 1000 pools and 100 x 100 nodes.
        with open("scripts/emulator-world.json") as f:
            world = json.load(f)
        world.update(_comment="make bench-peers: the built-in dev world, no pools or jobs, quotas raised",
                     pools=[], jobs=[])
        account = next(a for a in world["accounts"] if a["name"] == ACCOUNT)
        account.update(poolQuota=2000, dedicatedCoreQuota=20000)
        path = WORK + "/world.json"
        with open(path, "w") as f:
            json.dump(world, f)
        self.proc = subprocess.Popen([sys.executable, "scripts/azbatch-emulator", "--port", "0", "--world", path],
                                     stdout=subprocess.PIPE, stderr=open(WORK + "/emulator.log", "w"), text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            sys.exit("bench-peers: the emulator did not start (see %s/emulator.log)" % WORK)
        self.url = line.split()[-1]

    def control(self, what, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_emulator/" + what, data=data,
                                     headers={"Content-Type": "application/json"})
        with DIRECT.open(req, timeout=30) as r:
            return json.load(r)

    def requests(self):
        return self.control("stats")["requests"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


# {=== the scenarios ===}

def lua(*args):
    return ["lua5.4", HERE + "/azbatch.lua", *map(str, args)]


def setup_pools(emu, count, nodes, prefix, *image):
    emu.control("reset", {})
    emu.control("clock", {"timeScale": 1})
    subprocess.run(lua("setup", count, nodes, prefix, *image), check=True, env=emu.env)
    emu.control("clock", {"advance": 3600})    # every node allocated and idle


def command(tool, args):
    """The command line that runs one scenario with one tool."""
    if tool == "azbatch":
        return lua(*args)
    if tool == "node":
        return ["node", HERE + "/node.mjs", *map(str, args)]
    if tool == "python":
        return [SDK_PYTHON, HERE + "/python_sdk.py", *map(str, args)]
    # the CLIs: a cold show is the CLI itself, anything longer a shell script of calls
    if args[0] == "show":
        exe = ["az", "batch"] if tool == "az" else ["build/bin/azbatch"]
        return exe + ["pool", "show", "--pool-id", args[1]] + (["--only-show-errors"] if tool == "az" else [])
    if args[0] == "bluegreen" and tool == "azbatch-cli":     # the rollout as one command
        blue, green, poll = args[1], args[2], args[3]
        return ["build/bin/azbatch", "rollout", "start", "--strategy", "blue-green", "--pool", blue,
                "--image", BG_IMAGE, "--node-agent-sku-id", BG_AGENT, "--names", "%s=%s" % (blue, green),
                "--poll", str(poll)]
    return ["sh", HERE + "/cli.sh", "az" if tool == "az" else "azbatch", *map(str, args)]


NO_CLI_VERB = "azbatch's CLI has no `node list` verb; the Lua API row is azbatch's audit"
FANOUT_OFF = ("a process per GET: %d CLI processes; not run by default (`PEERS_CLI_FANOUT=1` runs them with "
              "`xargs -P %d`); the cold pool show row is the cost of one" % (GETS, CONC))

# Each scenario: key; label (table) and short (chart); the arguments every tool's
# program takes; ref, the azbatch row the ratios refer to; once, the setup
# before its runs, or each, before every run; skip, the tools that cannot run it
# and why; notes on rows; runs.
PER_CALL = "a process per call: %d processes" % (3 * CRUD)
FANOUT_NOTE = "xargs -P: CPU summed over the processes, memory the largest one's"
SCENARIOS = [
    dict(key="show", label="cold pool show", short="cold pool show", args=["show", "show-0001"],
         ref="azbatch-cli", runs=SHOW_RUNS, once=lambda emu: setup_pools(emu, 1, 0, "show-")),
    dict(key="crud", label="create, show, delete %d pools" % CRUD, short="create/show/delete %d" % CRUD,
         args=["crud", CRUD], ref="azbatch", each=lambda emu: emu.control("reset", {}),
         notes={"az": PER_CALL, "azbatch-cli": PER_CALL}),
    dict(key="list", label="list %d pools (pages of %d)" % (LIST, PAGE), short="list %d pools" % LIST,
         args=["list", LIST, PAGE], ref="azbatch", once=lambda emu: setup_pools(emu, LIST, 0, "list-"),
         notes={"az": "az cannot set a page size: it takes the service's (1000), so fewer pages",
                "azbatch-cli": "the CLI takes the service's page size (1000), as az does"}),
    dict(key="gets", label="%d GETs, concurrency %d" % (GETS, CONC), short="%d GETs ×%d" % (GETS, CONC),
         args=["gets", GETS, CONC, "list-0001"], ref="azbatch",
         skip={} if FANOUT else {"az": FANOUT_OFF, "azbatch-cli": FANOUT_OFF},
         notes={"az": FANOUT_NOTE, "azbatch-cli": FANOUT_NOTE} if FANOUT else {}),
    dict(key="audit", label="audit %d pools × %d nodes" % (AUDIT_POOLS, AUDIT_NODES),
         short="audit %d×%d" % (AUDIT_POOLS, AUDIT_NODES), args=["audit", AUDIT_POOLS, AUDIT_NODES, AUDIT_CONC],
         ref="azbatch", once=lambda emu: setup_pools(emu, AUDIT_POOLS, AUDIT_NODES, "audit-"),
         skip={"azbatch-cli": NO_CLI_VERB},
         notes={"az": "one call after another (a process per pool); the others %d pools at a time" % AUDIT_CONC}),
    dict(key="bluegreen", label="blue-green of a %d-node pool" % BG_NODES, short="blue-green",
         args=["bluegreen", "blue-0001", "green", BG_INTERVAL], ref="azbatch",
         each=lambda emu: (setup_pools(emu, 1, BG_NODES, "blue-", "old"), emu.control("clock", {"timeScale": 5})),
         notes={"azbatch": "`azbatch.rollout` (strategy blue-green): besides the steps the peers script, its "
                           "preflight, its records in the pools' metadata (resume, abort) and node-count samples "
                           "for its report, hence the requests",
                "azbatch-cli": "`azbatch rollout start --strategy blue-green`: the same rollout in one command, "
                               "which also prints its report"}),
]


# The lines of a failure's stderr that say what went wrong: a CLI's error line,
# lua5.4's message, a Python or JavaScript exception (not traceback lines).
SAID = re.compile(r"(lua5\.4:|error:|ERROR:|cli\.sh:|[\w.]*(Error|Exception)\b)")


def measure(emu, cmd, env):
    """One run under /usr/bin/time: wall, CPU, peak RSS, requests, or a failure."""
    before = emu.requests()
    out, errfile = WORK + "/time.out", WORK + "/stderr.out"
    with open(errfile, "w") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", out, *cmd], env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    with open(out) as f:
        fields = f.read().split()[-4:]       # after "Command exited with non-zero status N"
    if p.returncode != 0:
        # the line that says what went wrong, not the end of a traceback
        with open(errfile, errors="replace") as f:
            lines = [line.strip() for line in f.read().replace(KEY, "<key>").splitlines() if line.strip()]
        said = [line for line in lines if SAID.match(line)]
        if "Traceback (most recent call last):" in lines:
            said = said[-1:]                 # Python names the exception last, the others first
        return {"error": (said[:1] or lines[-1:] or ["exit %d" % p.returncode])[0][:200]}
    # /usr/bin/time prints CPU in 10 ms steps and an azbatch call takes about
    # 10 ms: take wall and CPU at microsecond resolution from the same run
    # (its rusage includes /usr/bin/time's own ~1 ms); the peak RSS is the
    # tool's, as /usr/bin/time reports it (%M, KiB).
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_kib": int(fields[3]),
            "time": " ".join(fields), "requests": emu.requests() - before}


def run_tool(emu, sc, tool, env):
    """A tool's row of a scenario: the medians of its runs, or n/a and why."""
    if tool in sc.get("skip", {}):
        return {"na": sc["skip"][tool]}
    cmd = command(tool, sc["args"])
    runs = []
    # The cold show starts with one untimed run per tool (page cache, az's
    # configuration directory); the scenarios after it find them warm.
    warmup = 1 if sc["key"] == "show" else 0
    for i in range(warmup + sc.get("runs", RUNS)):
        if "each" in sc:
            sc["each"](emu)
        r = measure(emu, cmd, env)
        if "error" in r:
            log("  %-12s failed: %s" % (tool, r["error"]))
            return {"na": "failed: " + r["error"]}
        if i >= warmup:
            runs.append(r)
    row = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "rss_kib", "requests")}
    log("  %-12s wall %.3fs cpu %.3fs rss %.1f MiB requests %d (median of %d)" % (
        tool, row["wall"], row["cpu"], row["rss_kib"] / 1024, row["requests"], len(runs)))
    return dict(row, runs=runs)


def run_all():
    os.makedirs(WORK, exist_ok=True)
    install()
    vers = versions()
    # every tool straight to the emulator: no proxy from the environment
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               AZURE_BATCH_ACCOUNT=ACCOUNT, AZURE_BATCH_ACCESS_KEY=KEY,
               # the modules as 'make install' installs them: precompiled
               LUA_PATH="build/lua/?.lua;build/lua/?/init.lua;;", LUA_CPATH="build/?.so;;",
               # the CLI as 'make install' installs it: the native launcher
               PEERS_NODE_PREFIX=NPM_PREFIX, AZBATCH_CLI="build/bin/azbatch",
               # az: a throw-away configuration, no telemetry, no survey
               AZURE_CONFIG_DIR=WORK + "/azconfig", AZURE_CORE_COLLECT_TELEMETRY="false",
               AZURE_CORE_NO_COLOR="true", AZURE_CORE_SURVEY_MESSAGE="false")
    want_s = [w for w in os.environ.get("PEERS_SCENARIOS", "").split(",") if w]
    want_t = [w for w in os.environ.get("PEERS_TOOLS", "").split(",") if w]
    started, date, load0 = time.time(), time.strftime("%Y-%m-%d %H:%M %Z"), os.getloadavg()[0]
    emu = Emulator()
    env["AZURE_BATCH_ENDPOINT"] = emu.url
    emu.env = env                         # the setup runs azbatch too
    results = []
    try:
        for sc in SCENARIOS:
            if want_s and sc["key"] not in want_s:
                continue
            load = os.getloadavg()[0]
            log("%s (load average %.2f)" % (sc["label"], load))
            if "once" in sc:
                sc["once"](emu)
            rows = {tool: run_tool(emu, sc, tool, env) for tool, _ in TOOLS if not want_t or tool in want_t}
            results.append({"key": sc["key"], "label": sc["label"], "short": sc["short"], "ref": sc["ref"],
                            "load": load, "rows": rows, "notes": {t: n for t, n in sc.get("notes", {}).items() if t in rows}})
    finally:
        emu.stop()
    meta = {"date": date, "cores": os.cpu_count(), "versions": vers,
            "load_start": load0, "load_end": os.getloadavg()[0], "seconds": time.time() - started,
            "runs": RUNS, "show_runs": SHOW_RUNS}
    return results, meta


# {=== the table and the chart ===}

def fmt_time(s):
    return "%.0f ms" % (s * 1000) if s < 0.995 else "%.2f s" % s


def fmt_ratio(x):
    return "%.2g×" % x if x < 100 else "%.0f×" % x


def summary(results):
    """The short table (the README's): CPU and peak memory per tool, ratios to azbatch."""
    out = ["| scenario | azbatch | " + " | ".join(LABEL[t] for t in PEERS) + " |", "|---|" + "--:|" * 4]
    for sc in results:
        ref = sc["rows"].get(sc["ref"])
        if not ref or "na" in ref:
            continue
        cells = ["%s, %.1f MiB" % (fmt_time(ref["cpu"]), ref["rss_kib"] / 1024)]
        for tool in PEERS:
            r = sc["rows"].get(tool)
            if not r:
                cells.append("")
            elif "na" in r:
                cells.append("n/a")
            else:
                cells.append("%s (%s), %.1f MiB (%s)" % (fmt_time(r["cpu"]), fmt_ratio(r["cpu"] / ref["cpu"]),
                                                        r["rss_kib"] / 1024, fmt_ratio(r["rss_kib"] / ref["rss_kib"])))
        out.append("| %s | %s |" % (sc["label"], " | ".join(cells)))
    return out


def markdown(results, meta):
    notes = []                           # footnote texts, numbered in order of use

    def mark(text):
        if text not in notes:
            notes.append(text)
        return "<sup>%d</sup>" % (notes.index(text) + 1)

    head = ["scenario", "tool", "wall", "CPU", "peak memory", "requests", "wall ×", "CPU ×", "memory ×"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "--:|" * 7]
    targets = []
    for sc in results:
        rows, ref = sc["rows"], sc["rows"].get(sc["ref"])
        ref = ref if ref and "na" not in ref else None
        for tool, label in TOOLS:
            if tool not in rows:
                continue
            r = rows[tool]
            name = ("**%s**" % label if tool == sc["ref"] else label)
            if tool in sc["notes"]:
                name += " " + mark(sc["notes"][tool])
            if "na" in r:
                out.append("| %s | %s | n/a %s | | | | | | |" % (sc["label"], name, mark(r["na"])))
                continue
            ratios = ["", "", ""]
            if ref and tool != sc["ref"]:
                ratios = [fmt_ratio(r[k] / ref[k]) if ref[k] > 0 else "" for k in ("wall", "cpu", "rss_kib")]
            out.append("| %s | %s | %s | %s | %.1f MiB | %d | %s |" % (
                sc["label"], name, fmt_time(r["wall"]), fmt_time(r["cpu"]), r["rss_kib"] / 1024, r["requests"],
                " | ".join(ratios)))
        peers = [rows[t] | {"tool": t} for t in PEERS if t in rows and "na" not in rows[t]]
        if ref and peers:
            cpu = min(peers, key=lambda p: p["cpu"])
            mem = min(peers, key=lambda p: p["rss_kib"])
            targets.append("| %s | %s (%s) | %s | %s | %s | %s (%.1f MiB) | %.1f MiB | %s | %s |" % (
                sc["label"], LABEL[cpu["tool"]], fmt_time(cpu["cpu"]), fmt_time(ref["cpu"]),
                fmt_ratio(cpu["cpu"] / ref["cpu"]), "meets" if cpu["cpu"] >= 10 * ref["cpu"] else "**misses**",
                LABEL[mem["tool"]], mem["rss_kib"] / 1024, ref["rss_kib"] / 1024,
                fmt_ratio(mem["rss_kib"] / ref["rss_kib"]),
                "meets" if mem["rss_kib"] >= 4 * ref["rss_kib"] else "**misses**"))
    out.append("")
    out += ["%d. %s" % (i + 1, n) for i, n in enumerate(notes)]
    v = meta["versions"]
    text = ["# azbatch and its peers against the emulator", "",
            "%s, %d cores, load average (1 min) %.2f at the start and %.2f at the end; medians of %d runs "
            "(cold pool show: %d, after one untimed run). Ratios are the tool's figure over the **bold** "
            "azbatch row's. `make bench-peers` took %.0f s." % (
                meta["date"], meta["cores"], meta["load_start"], meta["load_end"], meta["runs"],
                meta["show_runs"], meta["seconds"]), "",
            "Load average (1 min) as each scenario started: %s." % ", ".join(
                "%s %.2f" % (sc["key"], sc["load"]) for sc in results if "load" in sc), "",
            "azbatch %s (%s); %s; %s; %s." % (v["azbatch"], v["lua"], v["az"], v["node"], v["python"]), "",
            "CPU time and peak memory, and in brackets how many times azbatch's (its CLI for the cold pool "
            "show, its Lua API otherwise):", ""]
    text += summary(results)
    text += ["", "Every figure, with wall time and requests:", ""]
    text += out
    text += ["", "Targets (design.md): at least 10× less CPU than the best peer and at most a quarter of its "
             "peak memory (the best peer for each: the lowest figure among az, Node and Python).", "",
             "| scenario | best peer CPU | azbatch CPU | factor | ≥ 10× | best peer memory | azbatch memory "
             "| factor | ≥ 4× |", "|---|---|--:|--:|---|---|--:|--:|---|"] + targets
    return "\n".join(text) + "\n"


def chart(results):
    """Grouped bars per scenario: CPU time and peak memory, log scales (gnuplot)."""
    dat, top = WORK + "/chart.dat", {}
    with open(dat, "w") as f:
        for metric, scale in (("cpu", 1000.0), ("rss_kib", 1 / 1024)):
            if metric == "cpu":
                f.write("scenario " + " ".join('"%s"' % label for _, label in TOOLS) + "\n")
            for sc in results:
                vals = []
                for tool, _ in TOOLS:
                    r = sc["rows"].get(tool)
                    vals.append("%.4g" % (r[metric] * scale) if r and "na" not in r else "NaN")
                    if r and "na" not in r:
                        top[metric] = max(top.get(metric, 0), r[metric] * scale)
                f.write('"%s" %s\n' % (sc["short"], " ".join(vals)))
            f.write("\n\n")
    svg = "build/bench-peers.svg"
    subprocess.run(["gnuplot", "-e", "datafile='%s'; output='%s'; tools=%d; cpumax=%g; memmax=%g" % (
                        dat, svg, len(TOOLS), top.get("cpu", 1000), top.get("rss_kib", 100)),
                    HERE + "/chart.gp"], check=True)
    return svg


def main():
    os.chdir(ROOT)
    if sys.argv[1:] == ["--report"]:         # redraw the table and chart from the last run
        with open("build/bench-peers.json") as f:
            last = json.load(f)
        results, meta = last["results"], last["meta"]
    else:
        results, meta = run_all()
    md = markdown(results, meta)
    with open("build/bench-peers.md", "w") as f:
        f.write(md)
    with open("build/bench-peers.json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    svg = chart(results) if shutil.which("gnuplot") else None
    print(md)
    print("wrote build/bench-peers.md, build/bench-peers.json" + (", " + svg if svg else ""))


if __name__ == "__main__":
    main()
