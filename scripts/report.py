#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn test host serial logs into KTAP results, and sum results up.

  report.py parse --plan PLAN --kunit KUNIT_LIST --out RESULTS.json LOG
      Check one test host run against its plan.  Every planned test must
      have run and returned 0: a skip (rc 4), a timeout, a missing result,
      a stage that never booted, a truncated or missing KUnit suite and a
      kernel oops, panic, BUG or WARNING are failures, each with its name.
      A test that printed "CT-RETRY: SUITE/NAME WHY" (one the plan lets
      run twice) and passed the second time passes, with WHY beside it.
      Prints KTAP; exits 1 if anything failed.

  report.py record --out RESULTS.json --group G --name N (--ok | --fail WHY)
      Append one result (used by the steps that are not test host runs).

  report.py summary RESULTS.json...
      Print every group as KTAP, then the closing line
      "N passed, N failed" (with how many passed on a retry, each named
      above it); exit 1 if anything failed or nothing ran.
"""

import argparse
import json
import os
import re
import sys

TS = re.compile(r'^\[\s*\d+\.\d+\]\s?')
KTAP_RESULT = re.compile(r'^(not ok|ok) (\d+) (\S+)(.*)$')
KTAP_PLAN = re.compile(r'^1\.\.(\d+)$')
KERNEL_BAD = re.compile(
    r'(Kernel panic - not syncing|BUG: |Oops: |general protection fault|'
    r'WARNING: CPU: |WARNING: at |kernel BUG at|Unable to handle kernel)')
RC_SKIP = 4
RC_KILLED = 137


class Result:
    def __init__(self, group, name, ok, why=''):
        self.group, self.name, self.ok, self.why = group, name, ok, why

    def to_dict(self):
        return {'group': self.group, 'name': self.name, 'ok': self.ok,
                'why': self.why}


def read_plan(path):
    """Plan lines: STAGE SUITE NAME TIMEOUT_S COMMAND..."""
    plan = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            w = line.split(None, 4)
            if len(w) < 5 or not w[0].isdigit() or not w[3].isdigit():
                raise SystemExit(f'bad plan line: {line!r}')
            plan.append((int(w[0]), w[1], w[2], int(w[3])))
    return plan


def read_list(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.split()[0] for l in f
                if l.strip() and not l.lstrip().startswith('#')]


def split_stages(lines):
    """Map stage number -> its log lines (those after its CT-BOOT)."""
    stages, cur = {}, None
    host = []
    for line in lines:
        m = re.search(r'CT-BOOT: stage=(\d+)', line)
        if m:
            cur = int(m.group(1))
            stages[cur] = []
            continue
        if line.startswith('CT-HOST:'):
            host.append(line)
            continue
        if cur is not None:
            stages[cur].append(line)
    return stages, host


def parse_kunit(lines):
    """Top-level KUnit KTAP: returns (planned, {suite: (ok, why)})."""
    planned, suites, in_ktap = None, {}, False
    for raw in lines:
        line = TS.sub('', raw.rstrip('\n'))
        if line == 'KTAP version 1':
            in_ktap = True
            continue
        if not in_ktap:
            continue
        m = KTAP_PLAN.match(line)
        if m and planned is None:
            planned = int(m.group(1))
            continue
        m = KTAP_RESULT.match(line)
        if m:
            ok = m.group(1) == 'ok'
            rest = m.group(4)
            if ok and '# SKIP' in rest:
                suites[m.group(3)] = (False, 'skipped' + rest)
            else:
                suites[m.group(3)] = (ok, '' if ok else 'failed' + rest)
    return planned, suites


def boot_logs(lines):
    """Per boot: its whole log, kernel messages included."""
    boots, cur, seen = [], [], False
    for line in lines:
        if re.search(r'Linux version \d', line):
            if seen:
                boots.append(cur)
                cur = []
            seen = True
        cur.append(line)
    if cur:
        boots.append(cur)
    return boots


def check_run(plan, kunit, lines):
    results = []
    stages, host = split_stages(lines)
    nstages = max([p[0] for p in plan] + [1])
    boots = boot_logs(lines)
    died = ''
    for line in lines:
        if KERNEL_BAD.search(line):
            died = TS.sub('', line.strip())
            break
    host_why = '; '.join(h[len('CT-HOST: '):].strip() for h in host)

    for st in range(1, nstages + 1):
        booted = st in stages
        group = f'stage{st}'
        slog = stages.get(st, [])
        ends = {}
        begun = set()
        retried = {}
        for line in slog:
            m = re.match(r'CT-TEST-BEGIN: (\S+)', line)
            if m:
                begun.add(m.group(1))
            m = re.match(r'# CT-RETRY: (\S+) (.*)$', line)
            if m:
                retried[m.group(1)] = m.group(2)
            m = re.match(r'CT-TEST-END: (\S+) rc=(\d+)', line)
            if m:
                ends[m.group(1)] = int(m.group(2))
        for (pst, suite, name, tmo) in plan:
            if pst != st:
                continue
            key = f'{suite}/{name}'
            g = f'{group}.{suite}'
            if key in ends:
                rc = ends[key]
                if rc == 0:
                    results.append(Result(g, name, True,
                                          f'passed on its retry ({retried[key]})'
                                          if key in retried else ''))
                elif rc == RC_SKIP:
                    results.append(Result(g, name, False,
                                          'skipped (rc 4): a listed test must pass'))
                elif rc == RC_KILLED:
                    results.append(Result(g, name, False,
                                          f'timeout: killed after {tmo}s'))
                else:
                    results.append(Result(g, name, False, f'failed: rc={rc}'))
            elif key in begun:
                why = 'no result: the guest died during the test'
                if died:
                    why += f' ({died})'
                elif host_why:
                    why += f' ({host_why})'
                results.append(Result(g, name, False, why))
            elif not booted:
                cause = died or host_why
                results.append(Result(g, name, False,
                                      f'missing: stage {st} never booted'
                                      + (f' ({cause})' if cause else '')))
            else:
                results.append(Result(g, name, False, 'missing: never ran'))

        # KUnit suites run in every boot.
        blog = boots[st - 1] if st - 1 < len(boots) else []
        planned, suites = parse_kunit(blog)
        for s in kunit:
            g = f'{group}.kunit'
            if s in suites:
                ok, why = suites[s]
                results.append(Result(g, s, ok, why))
            elif not blog:
                results.append(Result(g, s, False,
                                      f'missing: boot {st} never happened'))
            elif planned is not None and len(suites) < planned:
                results.append(Result(g, s, False,
                                      f'missing: KTAP truncated ({len(suites)} of {planned} suites reported)'))
            else:
                results.append(Result(g, s, False, 'missing: suite did not run'))

        # The kernel itself must stay healthy during the stage.
        bad = [TS.sub('', l.strip()) for l in blog if KERNEL_BAD.search(l)]
        if blog:
            results.append(Result(f'{group}.kernel', 'health', not bad,
                                  f'kernel: {bad[0]}' if bad else ''))
        done = any(f'CT-STAGE-DONE: stage={st}' in l for l in slog)
        if booted and not done:
            results.append(Result(f'{group}.kernel', 'completed', False,
                                  'stage did not complete' +
                                  (f' ({host_why})' if host_why else '')))
        elif booted:
            results.append(Result(f'{group}.kernel', 'completed', True))

    if host_why:
        results.append(Result('host', 'run', False, host_why))
    return results


def print_ktap(results, out=sys.stdout):
    groups = []
    for r in results:
        if r.group not in groups:
            groups.append(r.group)
    print('KTAP version 1', file=out)
    print(f'1..{len(groups)}', file=out)
    for i, g in enumerate(groups, 1):
        rs = [r for r in results if r.group == g]
        print('    KTAP version 1', file=out)
        print(f'    # Subtest: {g}', file=out)
        print(f'    1..{len(rs)}', file=out)
        for j, r in enumerate(rs, 1):
            if r.ok:
                print(f'    ok {j} {r.name}', file=out)
                if r.why:
                    print(f'    # {r.name}: {r.why}', file=out)
            else:
                print(f'    not ok {j} {r.name} # {r.why}', file=out)
        gok = all(r.ok for r in rs)
        print(f'{"ok" if gok else "not ok"} {i} {g}', file=out)


def save(results, path, append=False):
    mode = 'a' if append else 'w'
    with open(path, mode) as f:
        for r in results:
            f.write(json.dumps(r.to_dict()) + '\n')


def load(paths):
    results = []
    for p in paths:
        with open(p) as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    results.append(Result(d['group'], d['name'], d['ok'],
                                          d['why']))
    return results


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('parse')
    p.add_argument('--plan', required=True)
    p.add_argument('--kunit')
    p.add_argument('--out')
    p.add_argument('--prefix', default='')
    p.add_argument('log')
    r = sub.add_parser('record')
    r.add_argument('--out', required=True)
    r.add_argument('--group', required=True)
    r.add_argument('--name', required=True)
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument('--ok', action='store_true')
    g.add_argument('--fail', metavar='WHY')
    s = sub.add_parser('summary')
    s.add_argument('results', nargs='+')
    a = ap.parse_args()

    if a.cmd == 'parse':
        plan = read_plan(a.plan)
        kunit = read_list(a.kunit)
        try:
            with open(a.log, errors='replace') as f:
                lines = [l.rstrip('\r\n') for l in f]
        except FileNotFoundError:
            lines = []
        results = check_run(plan, kunit, lines)
        if a.prefix:
            for x in results:
                x.group = f'{a.prefix}.{x.group}'
        if not lines:
            results.append(Result(a.prefix or 'host', 'log', False,
                                  'no serial log: the guest never started'))
        print_ktap(results)
        if a.out:
            save(results, a.out)
        bad = [x for x in results if not x.ok]
        for x in bad:
            print(f'# FAIL {x.group}/{x.name}: {x.why}')
        return 1 if bad else 0
    if a.cmd == 'record':
        save([Result(a.group, a.name, a.ok, a.fail or '')], a.out, True)
        return 0
    if a.cmd == 'summary':
        results = load(a.results)
        print_ktap(results)
        npass = sum(1 for x in results if x.ok)
        nfail = len(results) - npass
        nretry = sum(1 for x in results if x.ok and x.why)
        for x in results:
            if not x.ok:
                print(f'# FAIL {x.group}/{x.name}: {x.why}')
            elif x.why:
                print(f'# RETRIED {x.group}/{x.name}: {x.why}')
        print(f'{npass} passed' +
              (f' ({nretry} on a retry)' if nretry else '') +
              f', {nfail} failed')
        return 1 if nfail or not results else 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
