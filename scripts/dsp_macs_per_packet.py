#!/usr/bin/python3
"""DSP efficiency from the code, since the emulator has no clock: disassembles the DSP program,
finds every hardware loop (loop0/loop1 ... :endloopN) whose body holds vrmpy, and reports int8
MACs per packet in it (each 128-byte vrmpy is 128 MACs; Hexagon v66 issues at most 2 per packet,
so the bound is 256). Exits non-zero when the best GEMM loop is below --min (default 192).

  scripts/dsp_macs_per_packet.py [build/mandheling_dsp.elf] [--min 192] [--json PATH]
"""
import argparse, json, re, shutil, subprocess, sys

BOUND = 256


def disassemble(elf):
    tool = shutil.which('llvm-objdump') or shutil.which('llvm-objdump-14')
    if not tool:
        sys.exit('llvm-objdump not found (Debian package llvm)')
    out = subprocess.run([tool, '-d', '--no-show-raw-insn', '--mcpu=hexagonv66', '--mattr=+hvxv66,+hvx-length128b', elf],
                         check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def packets(lines):
    """(address, text) per packet, in order; a packet runs from '{' to '}'."""
    out, cur, addr = [], [], None
    for line in lines:
        m = re.match(r'\s*([0-9a-f]+):\s*(.*)', line)
        if not m:
            continue
        a, text = int(m.group(1), 16), m.group(2)
        if text.lstrip().startswith('{'):
            cur, addr = [], a
        cur.append(text)
        if '}' in text:
            out.append((addr, ' '.join(cur)))
    return out


def loops(pk):
    """Hardware loops: the body from the loopN target address to the packet marked :endloopN."""
    found = []
    for i, (addr, text) in enumerate(pk):
        for m in re.finditer(r'loop([01])\(0x([0-9a-f]+),', text):
            n, start = m.group(1), int(m.group(2), 16)
            for j in range(i + 1, len(pk)):
                if pk[j][0] >= start and f':endloop{n}' in pk[j][1]:
                    body = [p for p in pk if start <= p[0] <= pk[j][0]]
                    found.append((start, body))
                    break
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('elf', nargs='?', default='build/mandheling_dsp.elf')
    ap.add_argument('--min', type=float, default=192)
    ap.add_argument('--json')
    args = ap.parse_args()
    pk = packets(disassemble(args.elf))
    rows = []
    for start, body in loops(pk):
        v = sum(p[1].count('vrmpy') for p in body)
        if v:
            rows.append({'loop_at': hex(start), 'packets': len(body), 'vrmpy': v, 'macs_per_packet': 128 * v / len(body)})
    if not rows:
        sys.exit(f'{args.elf}: no hardware loop with vrmpy found')
    for r in rows:
        print(f"loop at {r['loop_at']}: {r['packets']} packets, {r['vrmpy']} vrmpy -> {r['macs_per_packet']:.1f} int8 MACs "
              f"per packet ({100 * r['macs_per_packet'] / BOUND:.0f}% of the {BOUND} bound)")
    best = max(r['macs_per_packet'] for r in rows)
    if args.json:
        json.dump({'elf': args.elf, 'bound': BOUND, 'loops': rows, 'best': best}, open(args.json, 'w'), indent=1)
    ok = best >= args.min
    print(f"GEMM inner loop: {best:.1f} MACs/packet, target >= {args.min:g}: {'ok' if ok else 'BELOW TARGET'}")
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
