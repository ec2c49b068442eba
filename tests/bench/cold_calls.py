#!/usr/bin/env python3
"""make bench (a): one cold process per call, each command RUNS times,
interleaved (a load change hits every command alike), the median wall time
and CPU time (the children's user + system) of each.
  cold_calls.py RUNS NAME=JSON_ARGV [NAME=JSON_ARGV ...]
prints one line per command: NAME WALL_SECONDS CPU_SECONDS"""
import json
import resource
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    cmds = [(spec.split("=", 1)[0], json.loads(spec.split("=", 1)[1])) for spec in sys.argv[2:]]
    wall = {name: [] for name, _ in cmds}
    cpu = {name: [] for name, _ in cmds}
    for _ in range(runs):
        for name, argv in cmds:
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            status = subprocess.run(argv, stdout=subprocess.DEVNULL).returncode
            t1 = time.perf_counter()
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if status != 0:
                sys.exit("cold_calls: %s exited with %d" % (name, status))
            wall[name].append(t1 - t0)
            cpu[name].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    for name, _ in cmds:
        print(name, statistics.median(wall[name]), statistics.median(cpu[name]))


main()
