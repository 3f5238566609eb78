#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report what caretaker_orphan_test's `demo` and `bench` modes measured.

  perf-report.py LOG --mode demo|bench [--out DIR]
      Parse the CT-BENCH / CT-DEMO lines of a test host's serial log.
      demo: a timeline of the guest's progress per 250 ms with PREPARE,
      DETACH, VMM-EXIT, ATTACH (...) marked, the stall figures beside the
      noise floor, and DIR/demo.svg.  bench: median and max over the
      runs of each kind, with the definitions, into DIR/bench.txt and
      DIR/bench.csv.  Exits 1 if the test did not pass or left no figures.

  perf-report.py LOG --mode kexec [--out DIR]
      make bench's kexec boot: the CT-KXBENCH lines, median and max per
      kind (caretaker, pause) and the ratio of the stalls, into
      DIR/kexec.txt and DIR/kexec.csv.

  perf-report.py --follow LOG [--done FILE]
      Follow LOG while the test host runs (until FILE exists) and print
      the guest's progress compactly: events as they happen, one status
      line for the samples.

The test prints its lines twice: at once on the console (--live), and in
its own output, which the test host's /init prints, each line prefixed
with "# ", when the test has ended.  The report reads the second copy,
complete and never split by kernel messages; only when it is missing (the
guest died) does it fall back on the live copy, and says so.

Rules for the figures (the issue's): a stall is a gap in the guest's own
TSC trail; where a stall is no longer than the noise floor (the longest
gap in a window of the same run with no event), it is reported as within
the noise floor, never as a ratio.  Nothing here invents a figure: what
the log does not hold is reported as missing.
"""

import argparse
import csv
import html
import math
import os
import re
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import KERNEL_BAD  # noqa: E402  (one definition of a bad kernel line)

REC = re.compile(r'(CT-(?:BENCH|DEMO|KXBENCH)) ([a-z][a-z-]*)((?: [a-z_0-9]+=\S*)*)')
KV = re.compile(r'([a-z_0-9]+)=(\S*)')
BIN_MS = 250
BLOCKS = '▁▂▃▄▅▆▇█'
EVENT_MARK = {'PREPARE': 'P', 'PAUSE': 'p', 'DETACH': 'D', 'VMM-EXIT': 'X',
              'VMM-START': 'S', 'ATTACH': 'A', 'RUN': 'R', 'KEXEC': 'K'}
EPOCH_MARK = {'warmup': 'w', 'quiet': 'q', 'prepare': 'p', 'detach': 'd',
              'exit': 'x', 'absence': '-', 'build': 'b', 'attach': 'a',
              'after': 'f'}

KEXEC_DEFINITIONS = """\
Across a kexec (make demo's second boot): the same runs as a VMM restart,
with the host kexecing in the middle.  caretaker: PREPARE, DETACH, VMM A
exits, the orphan and its memfds go into a LUO session, kexec (K: from
the outgoing kernel's liveupdate_reboot() stamp to the incoming kernel's
start_kernel()), VMM B retrieves them and ATTACHes; classic: VMM A pauses
the vCPU, saves its state into a memfd of the session and exits, kexec
(K: from that hand-over to the next kernel's start), VMM B restores it.
The guest samples its own counter into its memory every 50 ms; that memory
crosses the kexec.  live update stall: caretaker, the longest gap from
200 ms before DETACH to 200 ms after ATTACH; classic, from the pause to
200 ms after the restored vCPU runs.  progress: the guest's rate from VMM
A's exit to VMM B's start as a share of its rate in the quiet second.
"""

DEFINITIONS = """\
Definitions (every time is a gap in the guest's own TSC trail: the guest
loop writes RDTSC and a counter into its memory, nothing else; guest TSC
minus host TSC is checked to be the same before DETACH and after ATTACH,
by the vCPUs' KVM_VCPU_TSC_OFFSET and by reading both TSCs together, so
no TSC offset can hide a stall):
  noise floor     the longest gap, and the p99.9 gap (upper bound of its
                  log2 bucket), in T of the same run with no event at all
                  (the guest attached, under VMM A)
  PREPARE         the longest gap in the call and 200 ms after it
                  (outside the stall by design: still attached)
  DETACH, ATTACH  the longest gap in the call +-200 ms; "across the
                  call": of those, the longest gap that overlaps the
                  call itself (the handover, apart from what else the
                  window holds, such as the CPUs' return to Linux); if
                  none of the window's 8 longest gaps does, the 8th,
                  which bounds it; "began before", "ended after": how
                  far that gap reaches beyond the call (host CPUs
                  taking turns, waking the caller, KVM_RUN's entry)
  restart stall   caretaker: the longest gap from 200 ms before DETACH
                  to 200 ms after ATTACH; classic: the longest gap from
                  the pause until 200 ms after the new VMM runs the
                  restored vCPU, T later
  progress        guest iterations per 10^9 host cycles over the T with
                  no VMM (classic: the whole restart epoch), as % of the
                  same guest attached (the quiet window); target >= 95 %
  monitor         the holder sampling the counter every ~1 ms with the
                  host TSC: the longest it saw the counter stand still
                  (a cross-check, not the measure)
A stall no longer than its run's noise floor is "within the noise floor":
this test host (QEMU TCG, -smp 3 on two cores) cannot resolve it, and no
ratio is given for it."""


def num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


class Log:
    """The CT- records of one serial log, and how the test ended."""

    def __init__(self, path):
        try:
            with open(path, errors='replace') as f:
                lines = [l.rstrip('\r\n') for l in f]
        except FileNotFoundError:
            lines = []
        self.lines = lines
        copy, live = [], []
        for line in lines:
            m = REC.search(line)
            if not m:
                continue
            rec = (m.group(1), m.group(2),
                   {k: num(v) for k, v in KV.findall(m.group(3))})
            (copy if line.startswith('# ') else live).append(rec)
        self.records = copy or live
        self.source = ('the test\'s own output' if copy else
                       'the live console copy only: the test\'s own output '
                       'is missing (it was killed, or the guest died)'
                       if live else 'nothing')
        self.rc = None
        self.test = None
        out = []
        inside = False
        for line in lines:
            m = re.search(r'CT-TEST-BEGIN: (\S+)', line)
            if m:
                self.test, inside, out = m.group(1), True, []
                continue
            m = re.search(r'CT-TEST-END: (\S+) rc=(\d+)', line)
            if m:
                self.rc, inside = int(m.group(2)), False
                continue
            if inside and line.startswith('# ') and not REC.search(line):
                out.append(line[2:])
        self.output = out
        self.host = [l for l in lines if l.startswith('CT-HOST:')]
        self.kernel_bad = [l.strip() for l in lines if KERNEL_BAD.search(l)]

    def of(self, kind, prefix=None):
        return [kv for (p, k, kv) in self.records
                if k == kind and (prefix is None or p == prefix)]

    def problems(self):
        """Why the figures may be incomplete, in words."""
        why = []
        if not self.lines:
            why.append('no serial log: the test host never started')
        elif self.test is None:
            why.append('the test never started (no CT-TEST-BEGIN)')
        elif self.rc is None:
            why.append(f'{self.test} never ended (no CT-TEST-END)')
        elif self.rc == 4:
            skip = [l for l in self.output if 'SKIP' in l or 'skip' in l]
            why.append(f'{self.test} was skipped: the test host cannot show '
                       'this: ' + (skip[-1] if skip else 'no reason printed'))
        elif self.rc == 137:
            why.append(f'{self.test} was killed by its timeout')
        elif self.rc != 0:
            why.append(f'{self.test} failed (rc={self.rc})')
        if self.rc not in (None, 0, 4):
            fail = [l for l in self.output
                    if re.search(r'Assertion|assert|FAIL|failed|error', l)]
            why.extend('  ' + l for l in fail[:8])
        why.extend(h for h in self.host)
        why.extend(f'kernel: {b}' for b in self.kernel_bad[:3])
        return why


# ---- figures ----

def fmt_ms(v):
    if v is None:
        return '-'
    if v >= 100:
        return f'{v:.0f} ms'
    if v >= 1:
        return f'{v:.1f} ms'
    return f'{v:.3f} ms'


def stall_words(v, floor):
    """A stall beside its noise floor, by the rule: no ratio within it."""
    if v is None or floor is None:
        return '-'
    if v <= floor:
        return f'within the noise floor ({fmt_ms(v)} <= {fmt_ms(floor)})'
    return f'{fmt_ms(v)}, above the noise floor ({fmt_ms(floor)})'


def runs_by_kind(log):
    runs = {}
    for kv in log.of('run'):
        runs.setdefault(kv.get('kind'), []).append(kv)
    return runs


def get(kv, key):
    v = kv.get(key)
    return v if isinstance(v, (int, float)) and v >= 0 else None


# ---- demo ----

class Run:
    def __init__(self, nr):
        self.nr, self.kind = nr, '?'
        self.samples, self.events, self.epochs, self.figures = [], [], {}, {}


def demo_runs(log):
    runs = {}

    def run(kv):
        r = runs.setdefault(kv.get('run'), Run(kv.get('run')))
        r.kind = kv.get('kind', r.kind)
        return r

    for (_, kind, kv) in log.records:
        if 'run' not in kv or kind in ('config', 'done'):
            continue
        r = run(kv)
        if kind == 'sample':
            r.samples.append((kv.get('t_ms', 0), kv.get('counter', 0),
                              kv.get('epoch', '?')))
        elif kind == 'event':
            r.events.append((kv.get('name'), kv.get('t_ms', 0),
                             kv.get('dur_ms', 0)))
        elif kind == 'epoch':
            r.epochs[kv.get('epoch')] = kv
        elif kind == 'run':
            r.figures = kv
    return [runs[k] for k in sorted(runs, key=lambda x: (x is None, x))]


def bins(run):
    """Guest iterations per 250 ms bin, from the samples."""
    s = sorted(run.samples)
    if len(s) < 2:
        return []
    n = int(math.ceil(s[-1][0] / BIN_MS))
    out = [0.0] * n
    for (t0, c0, _), (t1, c1, _) in zip(s, s[1:]):
        if t1 <= t0:
            continue
        b = int(t0 // BIN_MS)
        while b * BIN_MS < t1 and b < n:
            lo, hi = max(t0, b * BIN_MS), min(t1, (b + 1) * BIN_MS)
            if hi > lo:
                out[b] += (c1 - c0) * (hi - lo) / (t1 - t0)
            b += 1
    first = int(s[0][0] // BIN_MS)
    return [None if i < first else v for i, v in enumerate(out)]


def reference_per_bin(run, b):
    """The attached rate (the quiet window's), in iterations per bin."""
    q = run.epochs.get('quiet')
    if q and q.get('ms'):
        return q.get('iters', 0) / q['ms'] * BIN_MS
    vals = [v for v in b if v]
    return max(vals) if vals else 0


def epoch_at(run, t):
    for name, kv in run.epochs.items():
        st, ms = kv.get('start_ms', 0), kv.get('ms', 0)
        if st <= t < st + ms:
            return name
    return None


def timeline(run, width=60):
    b = bins(run)
    if not b:
        return [f'  (no samples for run {run.nr})']
    ref = reference_per_bin(run, b)
    spark = []
    for v in b:
        if v is None:
            spark.append(' ')
        elif v <= 0 or not ref:
            spark.append('·')
        else:
            spark.append(BLOCKS[max(0, min(7, int(round(v / ref * 8)) - 1))])
    marks = [' '] * len(b)
    for name, t, _ in run.events:
        i = min(len(b) - 1, int(t // BIN_MS))
        marks[i] = EVENT_MARK.get(name, '?') if marks[i] == ' ' else '*'
    epochs = [EPOCH_MARK.get(epoch_at(run, (i + 0.5) * BIN_MS), ' ')
              for i in range(len(b))]
    out = []
    for i in range(0, len(b), width):
        out.append(f'  {i * BIN_MS / 1000:5.1f}s |{"".join(spark[i:i + width])}|')
        out.append(f'         |{"".join(marks[i:i + width])}|')
        out.append(f'         |{"".join(epochs[i:i + width])}|')
    return out


def demo_text(log, runs):
    cfg = (log.of('config') or [{}])[-1]
    t_ms = cfg.get('absence_ms')
    if cfg.get('kexec'):
        title = ('caretaker demo: a live update of the host (kexec), the caretaker\'s '
                 'way (PREPARE, DETACH, kexec, ATTACH) and the classic way (pause, '
                 'save, kexec, restore); the guest sampled itself into its memory')
    else:
        title = (f'caretaker demo: a VMM restart with T = '
                 f'{t_ms / 1000 if t_ms else "?"} s without any VMM, the '
                 'caretaker\'s way and the classic way')
    lines = [title, f'(figures from {log.source})', '']
    lines.append('Guest progress per 250 ms (one character), as a share of '
                 'its attached rate in the quiet window: █ = 100 %, '
                 '· = no progress at all.')
    lines.append('Events: P PREPARE, D DETACH, X VMM A gone (VMM-EXIT), '
                 'S VMM B started, A ATTACH, R VMM B runs the vCPU, '
                 'p pause (classic), K kexec, * several.')
    lines.append('Epochs: w warmup, q quiet (noise floor), p prepare, '
                 'd detach, x VMM A exits, - absence, b VMM B builds, '
                 'a attach, f after.')
    for r in runs:
        lines.append('')
        lines.append(f'run {r.nr}: {r.kind}')
        lines.extend(timeline(r))
        ev = ', '.join(f'{n} {t / 1000:.2f} s' + (f' ({fmt_ms(d)})' if d else '')
                       for n, t, d in r.events)
        if ev:
            lines.append(f'  events: {ev}')
    lines.append('')
    lines.extend(demo_figures(runs, bool(cfg.get('kexec'))))
    lines.append('')
    if cfg.get('kexec'):
        lines.append(KEXEC_DEFINITIONS)
        return lines
    lines.extend(tick_text(log))
    lines.append(DEFINITIONS)
    return lines


def tick_text(log):
    """The demo's guest tick through a VMM restart, per 250 ms."""
    bins = log.of('tick')
    if not bins:
        return ['Guest tick: not in this log.', '']
    summ = (log.of('ticksum') or [{}])[-1]
    period = summ.get('period_us')
    per_bin = 250000 / period if period else None
    out = ['The guest\'s own tick (a periodic x2APIC timer, HLT between ticks) '
           f'through a VMM restart: timer interrupts per 250 ms'
           + (f' (expected {per_bin:.0f})' if per_bin else '') + ';',
           '  d = detached, no VMM (the caretaker\'s runtime fires, injects and '
           'completes the EOI), a = adopted by VMM B']
    marks = ''.join('d' if b.get('state') == 'detached' else 'a' for b in bins)
    full = max([b.get('ticks', 0) for b in bins] + [per_bin or 1])
    spark = ''.join(BLOCKS[min(len(BLOCKS) - 1, int(b.get('ticks', 0) * (len(BLOCKS) - 1)
                                                      / full))] if b.get('ticks') else '·'
                    for b in bins)
    out.append(f'  {spark}')
    out.append(f'  {marks}')
    for state, words in (('detached', 'detached, no VMM'), ('adopted', 'after ATTACH')):
        t = [b['ticks'] for b in bins if b.get('state') == state
             and isinstance(b.get('ticks'), int)]
        if t:
            out.append(f'  {words:18} {len(t) * 0.25:5.2f} s: {sum(t)} ticks, '
                       f'{sum(t) / (len(t) * 0.25):.0f}/s, fewest in a bin {min(t)}')
    if summ.get('fires') is not None:
        out.append(f'  the runtime: {summ.get("fires")} expiries, {summ.get("injected")} '
                   f'injected, {summ.get("halts")} halts, latest injection '
                   f'{summ.get("max_late_us")} us after its expiry')
    out.append('')
    return out


def demo_figures(runs, kexec=False):
    ct = next((r.figures for r in runs if r.kind == 'caretaker' and r.figures), None)
    cl = next((r.figures for r in runs if r.kind == 'classic' and r.figures), None)
    if not ct and not cl:
        return ['No stall figures: no run finished (see above).']

    def col(kv, f):
        return f(kv) if kv else 'missing: the run did not finish'

    rows = [
        ('noise floor: longest gap (quiet)', lambda k: fmt_ms(get(k, 'noise_ms'))),
        ('noise floor: p99.9 gap (quiet)', lambda k: fmt_ms(get(k, 'noise_p999_ms'))),
    ]
    out = [f'{"":34} {"caretaker":44} classic']
    for name, f in rows:
        out.append(f'{name:34} {col(ct, f):44} {col(cl, f)}')
    for name, key in (('longest gap after PREPARE', 'prepare_ms'),
                      ('longest gap around DETACH', 'detach_ms'),
                      ('  across the DETACH call', 'detach_call_ms'),
                      ('longest gap around ATTACH', 'attach_ms'),
                      ('  across the ATTACH call', 'attach_call_ms')):
        if ct and get(ct, key) is None:
            continue
        v = col(ct, lambda k: stall_words(get(k, key), get(k, 'noise_ms')))
        out.append(f'{name:34} {v:44} -')
    def restart(k):
        return stall_words(get(k, 'restart_ms'), get(k, 'noise_ms'))

    def monitor(k):
        return fmt_ms(get(k, 'mon_restart_ms'))

    def progress(k):
        return f'{get(k, "progress_pct")} % of attached'

    rows = [('restart stall', restart), ('  the monitor saw', monitor),
            ('progress without a VMM', progress)]
    if kexec:
        # The guest sampled itself: no holder's monitor crosses a kexec.
        rows = [('live update stall', restart), ('progress without a VMM', progress)]
    for name, f in rows:
        out.append(f'{name:34} {col(ct, f):44} {col(cl, f)}')
    if ct:
        name = "the kernel's own stall_ns"
        out.append(f'{name:34} DETACH {ct.get("kernel_detach_stall_us", "-")} us, '
                   f'ATTACH {ct.get("kernel_attach_stall_us", "-")} us')
        name = 'guest exits while detached'
        out.append(f'{name:34} {ct.get("exits", "-")}, of which blocked until '
                   f'ATTACH: {ct.get("blocked_exits", "-")}')
    for r in runs:
        k = r.figures
        if k:
            out.append(f'TSC, run {r.nr} ({r.kind}): ' + tsc_words(k))
    if ct and get(ct, 'progress_pct') is not None and kexec:
        out.append('')
        out.append(f'Across the kexec, without any VMM, the guest kept '
                   f'{get(ct, "progress_pct"):.1f} % of its attached progress '
                   'under the caretaker.')
    elif ct and get(ct, 'progress_pct') is not None:
        p = get(ct, 'progress_pct')
        out.append('')
        out.append(f'Without any VMM the guest kept {p:.1f} % of its attached '
                   f'progress under the caretaker (target >= 95 %: '
                   f'{"met" if p >= 95 else "NOT met"}).')
    if cl and get(cl, 'restart_ms') is not None:
        out.append(f'The classic restart stopped it for '
                   f'{fmt_ms(get(cl, "restart_ms"))}, which contains T by construction.')
    return out


def tsc_words(k):
    ok = k.get('tsc_ok') == 1
    same = k.get('tsc_offset_a') == k.get('tsc_offset_b')
    return (('offsets equal' if same else 'OFFSETS DIFFER')
            + f' ({k.get("tsc_offset_a")}), guest-host read together minus the '
            f'offset: {k.get("tsc_xcheck_a")} before, {k.get("tsc_xcheck_b")} '
            f'after (+-{k.get("tsc_xcheck_err")} cycles): '
            + ('consistent' if ok else 'NOT consistent: the gaps cannot be trusted'))


# ---- the SVG ----

def nice_step(span, n=6):
    if span <= 0:
        return 1
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def svg_text(x, y, s, size=12, anchor='start', extra=''):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" '
            f'text-anchor="{anchor}" {extra}>{html.escape(str(s))}</text>')


def write_svg(runs, path, absence_ms, kexec=False):
    runs = [r for r in runs if r.samples]
    W, PH, L, R, T, B = 960, 280, 80, 30, 56, 52
    H = T + len(runs) * (PH + 20) + 10
    tmax = max((max(t for t, _, _ in r.samples) for r in runs), default=1000) / 1000
    xstep = nice_step(tmax)
    tmax = xstep * math.ceil(tmax / xstep)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>',
           svg_text(W / 2, 24, 'Guest progress across a live update of the host '
                    '(kexec, K)' if kexec else 'Guest progress across a VMM restart'
                    + (f' (T = {absence_ms / 1000:g} s without any VMM)'
                       if absence_ms else ''), 16, 'middle',
                    'font-weight="bold"'),
           svg_text(W / 2, 42, 'the guest\'s loop counter, '
                    + ('sampled by the guest itself every 50 ms into its memory; '
                       if kexec else 'sampled by the holder every 50 ms; ')
                    + 'grey: quiet window (noise floor); '
                    'yellow: no VMM process exists', 11, 'middle')]
    for i, r in enumerate(runs):
        y0 = T + i * (PH + 20)
        px0, px1, py0, py1 = L, W - R, y0 + 24, y0 + PH - B + 24
        cmax = max(c for _, c, _ in r.samples) / 1e6 or 1
        ystep = nice_step(cmax, 4)

        def X(t):
            return px0 + (px1 - px0) * t / (tmax or 1)

        def Y(c):
            return py1 - (py1 - py0) * c / (ystep * math.ceil(cmax / ystep))

        fig = r.figures
        sub = f'run {r.nr}: {"caretaker" if r.kind == "caretaker" else "classic restart"}'
        if fig:
            sub += (f' - restart stall: '
                    f'{stall_words(get(fig, "restart_ms"), get(fig, "noise_ms"))}'
                    f'; progress without a VMM: {fig.get("progress_pct")} %')
        out.append(svg_text(px0, y0 + 16, sub, 13, extra='font-weight="bold"'))
        q = r.epochs.get('quiet')
        if q:
            a, b = q.get('start_ms', 0) / 1000, (q.get('start_ms', 0) + q.get('ms', 0)) / 1000
            out.append(f'<rect x="{X(a):.1f}" y="{py0}" width="{X(b) - X(a):.1f}" '
                       f'height="{py1 - py0}" fill="#e8e8e8"/>')
        ev = {n: t / 1000 for n, t, _ in r.events}
        if 'VMM-EXIT' in ev and 'VMM-START' in ev:
            a, b = ev['VMM-EXIT'], ev['VMM-START']
            out.append(f'<rect x="{X(a):.1f}" y="{py0}" width="{max(0, X(b) - X(a)):.1f}" '
                       f'height="{py1 - py0}" fill="#fff3b0"/>')
        # axes and grid
        t = 0.0
        while t <= tmax + 1e-9:
            out.append(f'<line x1="{X(t):.1f}" y1="{py0}" x2="{X(t):.1f}" '
                       f'y2="{py1}" stroke="#f0f0f0"/>')
            out.append(svg_text(X(t), py1 + 16, f'{t:g}', 11, 'middle'))
            t += xstep
        c = 0.0
        while c <= ystep * math.ceil(cmax / ystep) + 1e-9:
            out.append(f'<line x1="{px0}" y1="{Y(c):.1f}" x2="{px1}" '
                       f'y2="{Y(c):.1f}" stroke="#f0f0f0"/>')
            out.append(svg_text(px0 - 6, Y(c) + 4, f'{c:g}', 11, 'end'))
            c += ystep
        out.append(f'<rect x="{px0}" y="{py0}" width="{px1 - px0}" '
                   f'height="{py1 - py0}" fill="none" stroke="#444"/>')
        out.append(svg_text((px0 + px1) / 2, py1 + 34,
                            'time since the run started (s)', 12, 'middle'))
        out.append(svg_text(20, (py0 + py1) / 2, 'guest iterations (millions)',
                            12, 'middle',
                            f'transform="rotate(-90 20 {(py0 + py1) / 2:.1f})"'))
        # events
        for k, (n, t, _) in enumerate(r.events):
            x = X(t / 1000)
            out.append(f'<line x1="{x:.1f}" y1="{py0}" x2="{x:.1f}" y2="{py1}" '
                       'stroke="#c0392b" stroke-dasharray="4 3"/>')
            out.append(svg_text(x + 3, py0 + 12 + 12 * (k % 4), n, 10,
                                extra='fill="#c0392b"'))
        pts = ' '.join(f'{X(t / 1000):.1f},{Y(c / 1e6):.1f}'
                       for t, c, _ in sorted(r.samples))
        out.append(f'<polyline points="{pts}" fill="none" stroke="#1f5fa8" '
                   'stroke-width="1.8"/>')
    out.append('</svg>')
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


# ---- bench ----

FIELDS = [
    # key, words, unit, a stall (judged against the noise floor)?
    ('noise_ms', 'noise floor: longest gap (quiet)', 'ms', False),
    ('noise_p999_ms', 'noise floor: p99.9 gap (quiet)', 'ms', False),
    ('prepare_ms', 'longest gap after PREPARE', 'ms', True),
    ('detach_ms', 'longest gap around DETACH', 'ms', True),
    ('detach_call_ms', '  of it, across the DETACH call', 'ms', True),
    ('detach_lead_ms', '    began before the call by', 'ms', False),
    ('detach_tail_ms', '    ended after its return by', 'ms', False),
    ('attach_ms', 'longest gap around ATTACH', 'ms', True),
    ('attach_call_ms', '  of it, across the ATTACH call', 'ms', True),
    ('attach_lead_ms', '    began before the call by', 'ms', False),
    ('attach_tail_ms', '    ended after its return by', 'ms', False),
    ('restart_ms', 'restart stall', 'ms', True),
    ('mon_restart_ms', '  the monitor saw', 'ms', False),
    ('kernel_detach_stall_us', 'DETACH stall, as the kernel counts it', 'us', False),
    ('kernel_attach_stall_us', 'ATTACH stall, as the kernel counts it', 'us', False),
    ('exits', 'guest exits while detached', '', False),
    ('blocked_exits', '  of which blocked until ATTACH', '', False),
]


def bench_text(log):
    cfg = (log.of('config') or [{}])[-1]
    runs = runs_by_kind(log)
    ct, cl = runs.get('caretaker', []), runs.get('classic', [])
    t_ms = cfg.get('absence_ms')
    out = [f'caretaker bench: VMM restarts with T = '
           f'{t_ms / 1000 if t_ms else "?"} s without any VMM; '
           f'{len(ct)} caretaker and {len(cl)} classic runs, interleaved',
           f'(figures from {log.source})', '']
    if len(ct) < 5 or len(cl) < 5:
        out.append(f'Note: fewer than 5 runs of each kind ({len(ct)}, {len(cl)}): '
                   'the issue asks for at least 5.')
    for name, rs in (('caretaker', ct), ('classic restart', cl)):
        title = f'{name}, {len(rs)} runs'
        out.append(f'{title:44} {"median":>9} {"max":>9}      verdict')
        if not rs:
            out.append('  no run finished')
            continue
        for key, words, unit, is_stall in FIELDS:
            vals = [get(k, key) for k in rs]
            vals = [v for v in vals if v is not None]
            if not vals:
                continue
            med, mx = statistics.median(vals), max(vals)
            verdict = ''
            if is_stall:
                within = sum(1 for k in rs if get(k, key) is not None
                             and get(k, 'noise_ms') is not None
                             and get(k, key) <= get(k, 'noise_ms'))
                verdict = ('within the noise floor' if within == len(vals)
                           else f'above the noise floor in {len(vals) - within} '
                                f'of {len(vals)} runs')
            out.append(f'  {words:42} {med:9.3f} {mx:9.3f} {unit:4} {verdict}'.rstrip())
        prog = [get(k, 'progress_pct') for k in rs if get(k, 'progress_pct') is not None]
        if prog:
            met = sum(1 for p in prog if p >= 95)
            verdict = (f'target >= 95 %: met in {met} of {len(prog)} runs'
                       if rs is ct else '')
            out.append(f'  {"progress without a VMM, % of attached":42} '
                       f'{statistics.median(prog):9.1f} {max(prog):9.1f} %    {verdict}'.rstrip())
        bad = [k.get('run') for k in rs if k.get('tsc_ok') != 1]
        out.append('  TSC: guest minus host the same before and after in every run'
                   if not bad else
                   f'  TSC check FAILED in runs {bad}: their stall figures cannot be trusted')
        out.append('')
    if ct and cl:
        ctr = [get(k, 'restart_ms') for k in ct if get(k, 'restart_ms') is not None]
        clr = [get(k, 'restart_ms') for k in cl if get(k, 'restart_ms') is not None]
        within = all(get(k, 'restart_ms') is not None and get(k, 'noise_ms') is not None
                     and get(k, 'restart_ms') <= get(k, 'noise_ms') for k in ct)
        if ctr and clr:
            if within:
                out.append(f'With T = {t_ms / 1000 if t_ms else "?"} s: the classic '
                           f'restart stalled the guest {fmt_ms(statistics.median(clr))} '
                           '(median); the caretaker\'s restart is within the noise '
                           'floor, so no ratio is given.')
            else:
                n_in = sum(1 for k in ct if get(k, 'restart_ms') is not None
                           and get(k, 'noise_ms') is not None
                           and get(k, 'restart_ms') <= get(k, 'noise_ms'))
                out.append(f'With T = {t_ms / 1000 if t_ms else "?"} s: the classic '
                           f'restart stalled the guest {fmt_ms(statistics.median(clr))}, '
                           f'the caretaker\'s {fmt_ms(statistics.median(ctr))} (medians; '
                           f'the caretaker\'s within the noise floor in {n_in} of '
                           f'{len(ct)} runs).')
            out.append('The classic stall contains T by construction; run make bench '
                       'with another CT_ABSENCE_S to see how each changes with T.')
    out.append('')
    out.extend(fastpath_text(log))
    out.extend(overhead_text(log))
    out.append(DEFINITIONS)
    return out, ct + cl


def fastpath_text(log):
    """The runtime's fast path against KVM, measured by the guest."""
    runs = log.of('fastpath')
    if not runs:
        return ['Fast path: not measured in this log.', '']
    out = [f'Fast path vs KVM, {len(runs)} runs (each: under KVM, detached, '
           'under KVM again; guest-measured medians of 64)']

    def col(key):
        return [k[key] for k in runs if isinstance(k.get(key), (int, float))]

    def row(words, key, unit):
        v = col(key)
        if v:
            out.append(f'  {words:42} {statistics.median(v):9.0f} {max(v):9.0f} {unit}')

    out.append(f'  {"":42} {"median":>9} {"max":>9}')
    row('CPUID, cycles: the runtime', 'cpuid_rt', 'cycles')
    row('CPUID, cycles: KVM', 'cpuid_kvm', 'cycles')
    row('CPUID, cycles: KVM after ATTACH', 'cpuid_kvm2', 'cycles')
    row('x2APIC TPR read, cycles: the runtime', 'tpr_rt', 'cycles')
    row('x2APIC TPR read, cycles: KVM', 'tpr_kvm', 'cycles')
    ratios = [k['cpuid_rt'] / k['cpuid_kvm'] for k in runs
              if k.get('cpuid_kvm') and isinstance(k.get('cpuid_rt'), (int, float))]
    cheapest = [min(k['cpuid_kvm'], k['tpr_kvm']) for k in runs
                if isinstance(k.get('cpuid_kvm'), int) and isinstance(k.get('tpr_kvm'), int)]
    if ratios:
        met = sum(1 for r in ratios if r <= 0.5)
        out.append(f'  CPUID runtime / KVM, per run: median {statistics.median(ratios):.2f}, '
                   f'max {max(ratios):.2f}; target <= 0.5 met in {met} of {len(ratios)} runs')
    if cheapest:
        out.append(f'  KVM\'s cheapest exit measured here (the cheaper of CPUID and a '
                   f'TPR read): {statistics.median(cheapest):.0f} cycles (median); under TCG '
                   'KVM emulates CPUID, so compare the runtime with this too')
    row('timer lateness, median, us: the runtime', 'late_med_us_rt', 'us')
    row('timer lateness, median, us: KVM', 'late_med_us_kvm', 'us')
    row('timer lateness, largest, us: the runtime', 'late_max_us_rt', 'us')
    row('timer lateness, largest, us: KVM', 'late_max_us_kvm', 'us')
    out.append('')
    return out


def overhead_text(log):
    """caretaker.ko loaded vs not, for an attached guest: paired runs."""
    pairs = [k for k in log.of('overhead')
             if isinstance(k.get('loaded_per_s'), (int, float))
             and isinstance(k.get('unloaded_per_s'), (int, float)) and k['unloaded_per_s']]
    if not pairs:
        return ['Attached-mode overhead: not measured in this log.', '']
    d = [100.0 * (k['loaded_per_s'] - k['unloaded_per_s']) / k['unloaded_per_s']
         for k in pairs]
    n = len(d)
    mean = statistics.mean(d)
    out = [f'Attached-mode overhead: an exit-bound guest (a CPUID loop under KVM), '
           f'caretaker.ko loaded vs not, {n} pairs, order alternating']
    out.append(f'  loaded:   median {statistics.median(k["loaded_per_s"] for k in pairs):,.0f} '
               'iterations/s')
    out.append(f'  unloaded: median {statistics.median(k["unloaded_per_s"] for k in pairs):,.0f} '
               'iterations/s')
    if n >= 2:
        sd = statistics.stdev(d)
        # Two-sided 95 % Student t quantiles, n - 1 degrees of freedom.
        t = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31,
             9: 2.26, 10: 2.23, 11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14}.get(n - 1, 2.0)
        half = t * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
        verdict = ('no difference beyond 1 %: target met' if lo >= -1 and hi <= 1 else
                   'the interval reaches beyond 1 %: not shown to be within 1 % on this host')
        out.append(f'  loaded vs unloaded: {mean:+.2f} % (95 % CI {lo:+.2f} .. {hi:+.2f} %); '
                   f'{verdict}')
    out.append('')
    return out


def kexec_text(log):
    """make bench, its kexec boot: a live update across a kexec vs pausing the VM across it."""
    runs = log.of('run', 'CT-KXBENCH')
    by = {}
    for kv in runs:
        by.setdefault(kv.get('kind'), []).append(kv)

    def col(kind, key):
        return [v for v in (get(kv, key) for kv in by.get(kind, [])) if v is not None]

    out = ['Live update across a host kexec (one boot, a kexec between runs, '
           'the kinds alternating):',
           '  stall: the longest gap in the guest\'s own TSC trail from the start of '
           'the update (PREPARE; baseline: the pause) until the new VMM runs it',
           '  kexec: the outgoing kernel\'s stamp (liveupdate_reboot()) to the '
           'incoming kernel\'s (start_kernel()); baseline runs hand no CPU over, so '
           'from the stage\'s hand-over to the next kernel\'s start_kernel() stamp',
           '  progress: the guest\'s rate without a VMM, across the kexec, as a share '
           'of its rate in the quiet second before the update']
    med = {}
    for kind, label in (('caretaker', 'caretaker: PREPARE, DETACH, kexec, ATTACH'),
                        ('pause', 'baseline: pause, save, kexec, restore')):
        st = col(kind, 'stall_ms')
        if not st:
            out.append(f'  {label}: no run in this log')
            continue
        med[kind] = statistics.median(st)
        kx, pr, nf = col(kind, 'kexec_ms'), col(kind, 'progress_pct'), col(kind, 'noise_ms')
        out.append(f'  {label}: {len(st)} runs')
        out.append(f'    stall median {fmt_ms(med[kind])}, max {fmt_ms(max(st))}; '
                   f'noise floor (quiet) median {fmt_ms(statistics.median(nf)) if nf else "-"}')
        if kx:
            out.append(f'    kexec median {fmt_ms(statistics.median(kx))}, max {fmt_ms(max(kx))}')
        if pr:
            out.append(f'    progress median {statistics.median(pr):.1f} %, '
                       f'min {min(pr):.1f} %')
    if 'caretaker' in med and 'pause' in med and med['pause'] > 0:
        ratio = 100.0 * med['caretaker'] / med['pause']
        worst = 100.0 * max(col('caretaker', 'stall_ms')) / min(col('pause', 'stall_ms'))
        verdict = 'target (< 1 %) met' if worst < 1 else 'target (< 1 %) not met'
        out.append(f'  caretaker stall / baseline stall: {ratio:.2f} % (medians), '
                   f'{worst:.2f} % (worst caretaker run / best baseline run): {verdict}')
    out.append('')
    return out, runs


def write_figures(out, name, text, problems, runs):
    """NAME.txt (the report and its problems) and NAME.csv (a row per run) in OUT."""
    with open(os.path.join(out, f'{name}.txt'), 'w') as f:
        f.write('\n'.join(text + [''] + problems) + '\n')
    if runs:
        write_csv(os.path.join(out, f'{name}.csv'), runs)
    text.append('')
    text.append(f'Written: {os.path.join(out, name + ".txt")}'
                + (f', {os.path.join(out, name + ".csv")}' if runs else ''))


def write_csv(path, runs):
    keys = []
    for kv in runs:
        for k in kv:
            if k not in keys:
                keys.append(k)
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for kv in sorted(runs, key=lambda k: k.get('run', 0)):
            w.writerow(kv)


# ---- follow ----

class Follower:
    def __init__(self):
        self.live = False
        self.tty = sys.stdout.isatty()
        self.status = ''
        self.last = {}
        self.shown = 0.0

    def say(self, s):
        if self.tty and self.status:
            print('\r' + ' ' * len(self.status) + '\r', end='')
        print(s, flush=True)
        if self.tty and self.status:
            print(self.status, end='', flush=True)

    def line(self, line):
        for tag in ('CT-BOOT:', 'CT-TEST-BEGIN:', 'CT-TEST-END:', 'CT-HOST:',
                    'CT-POWEROFF:'):
            if tag in line:
                self.say('  ' + line[line.index(tag):])
                return
        if KERNEL_BAD.search(line):
            self.say('  kernel: ' + line.strip())
            return
        m = REC.search(line)
        if not m:
            return
        copy = line.startswith('# ')
        if not copy:
            self.live = True
        elif self.live:
            return
        kind, kv = m.group(2), {k: num(v) for k, v in KV.findall(m.group(3))}
        who = f'run {kv.get("run")} {kv.get("kind", "")}'
        if kind == 'sample':
            t, c = kv.get('t_ms', 0), kv.get('counter', 0)
            pt, pc = self.last.get(kv.get('run'), (t, c))
            rate = (c - pc) / (t - pt) / 1e3 if t > pt else 0
            self.last[kv.get('run')] = (t, c)
            self.status = (f'  {who:14} t={t / 1000:6.1f} s  guest counter '
                           f'{c / 1e6:9.3f} M  {rate:6.2f} M/s  [{kv.get("epoch")}]')
            if self.tty:
                print('\r' + self.status, end='', flush=True)
            elif time.monotonic() - self.shown >= 1:
                self.shown = time.monotonic()
                print(self.status, flush=True)
        elif kind == 'event':
            dur = kv.get('dur_ms')
            self.say(f'  {who:14} {kv.get("t_ms", 0) / 1000:6.2f} s  {kv.get("name")}'
                     + (f'  ({fmt_ms(dur)})' if isinstance(dur, float) and dur > 0 else ''))
        elif kind == 'run-start':
            self.status = ''
            self.say(f'run {kv.get("run")}: a {kv.get("kind")} restart, '
                     f'{kv.get("absence_ms", 0) / 1000:g} s without any VMM')
        elif kind == 'run':
            self.status = ''
            self.say(f'  {who}: restart stall '
                     f'{stall_words(get(kv, "restart_ms"), get(kv, "noise_ms"))}; '
                     f'progress without a VMM {kv.get("progress_pct")} %; '
                     f'TSC {"ok" if kv.get("tsc_ok") == 1 else "NOT ok"}')
        elif kind in ('config', 'done'):
            self.say(f'  {m.group(1)} {kind} ' +
                     ' '.join(f'{k}={v}' for k, v in kv.items()))


def follow(path, done):
    f, pos, buf, fl = None, 0, '', Follower()
    while True:
        finished = bool(done) and os.path.exists(done)
        chunk = b''
        try:
            with open(path, 'rb') as f:
                f.seek(pos)
                chunk = f.read()
                pos += len(chunk)
        except FileNotFoundError:
            pass
        buf += chunk.decode('utf-8', 'replace')
        *lines, buf = buf.split('\n')
        for line in lines:
            fl.line(line.rstrip('\r'))
        if finished and not chunk:
            break
        time.sleep(0.2)
    if fl.tty and fl.status:
        print()
    return 0


# ---- main ----

def host_noise_text(path):
    """The report's lines for scripts/host-noise.c's output in @path."""
    cpus = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('CT-HOST-NOISE '):
                    cpus.append(dict(kv.split('=', 1) for kv in line.split()[1:]))
    except OSError as e:
        return [f'Host noise: not measured ({e.strerror})']
    if not cpus:
        return ['Host noise: not measured (no CT-HOST-NOISE line)']
    each = '; '.join(f'CPU{c["cpu"]} {c["gaps"]} times'
                     + (f', longest {float(c["longest_ms"]):.1f} ms' if int(c['gaps']) else '')
                     for c in cpus)
    return [f'Host noise, no test host running: a thread spinning on each host CPU for '
            f'{cpus[0]["secs"]} s lost it for over 1 ms: {each}']


def main():
    # The sparklines are UTF-8; a console that cannot show them gets '?'.
    sys.stdout.reconfigure(errors='replace')
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('log')
    ap.add_argument('--mode', choices=('demo', 'bench', 'kexec'))
    ap.add_argument('--out', help='directory for demo.svg or bench.txt/.csv')
    ap.add_argument('--follow', action='store_true')
    ap.add_argument('--done', help='with --follow: stop once this file exists')
    ap.add_argument('--host', help='the test host, for the report\'s second line')
    ap.add_argument('--host-noise', metavar='FILE',
                    help='scripts/host-noise.c\'s output, for the line after it')
    a = ap.parse_args()
    if a.follow:
        return follow(a.log, a.done)
    if not a.mode:
        ap.error('--mode is required')

    log = Log(a.log)
    problems = log.problems()
    host = [f'Test host: {a.host}'] if a.host else []
    if a.host_noise:
        host.extend(host_noise_text(a.host_noise))

    def with_host(text):
        text[1:1] = host
        return text

    if a.out:
        os.makedirs(a.out, exist_ok=True)
    if a.mode == 'demo':
        runs = demo_runs(log)
        text = with_host(demo_text(log, runs) if runs else ['No CT-DEMO lines in the log.'])
        if a.out and any(r.samples for r in runs):
            svg = os.path.join(a.out, 'demo.svg')
            cfg = (log.of('config') or [{}])[-1]
            write_svg(runs, svg, cfg.get('absence_ms'), bool(cfg.get('kexec')))
            text.append('')
            text.append(f'Plot: {svg}')
        complete = {r.kind for r in runs if r.figures} == {'caretaker', 'classic'}
    elif a.mode == 'kexec':
        text, runs = kexec_text(log)
        with_host(text)
        ends = [int(m) for m in re.findall(r'CT-TEST-END: \S+ rc=(\d+)', '\n'.join(log.lines))]
        if any(ends):
            problems.append(f'{sum(1 for e in ends if e)} of {len(ends)} stages failed')
        if a.out:
            write_figures(a.out, 'kexec', text, problems, runs)
        complete = {k.get('kind') for k in runs} == {'caretaker', 'pause'}
        # Several stages: the stage check above stands for log.rc.
        log.rc = 0 if not any(ends) else log.rc
    else:
        text, runs = bench_text(log)
        with_host(text)
        if a.out:
            write_figures(a.out, 'bench', text, problems, runs)
        complete = {k.get('kind') for k in runs} == {'caretaker', 'classic'}
    print('\n'.join(text))
    if problems:
        print()
        print('Problems:')
        print('\n'.join(f'  {p}' for p in problems))
    return 0 if complete and log.rc == 0 and not problems else 1


if __name__ == '__main__':
    sys.exit(main())
