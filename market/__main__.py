"""``python -m market convert|info``: build and inspect cached panels (see market/convert.py)."""

from __future__ import annotations

import argparse
import sys

from market.convert import convert, info, parse_source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m market", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="build a source's panel and cache it (mmap .npy)")
    conv.add_argument("--source", required=True,
                      help="synthetic[:n_stocks=..,n_days=..,seed=..] | cn_shared[:root] | "
                           "qlib:<root> | dir:<root>")
    conv.add_argument("--out", required=True, help="cache directory (as --data.cache_dir)")
    conv.add_argument("--start", help="first date (ISO), cn_shared and qlib only")
    conv.add_argument("--end", help="last date (ISO), cn_shared and qlib only")
    conv.add_argument("--industry", default="csrc",
                      choices=("csrc", "csrc_section", "tushare", "none"),
                      help="industry map of cn_shared")
    conv.add_argument("--force", action="store_true", help="rebuild an existing panel")
    show = sub.add_parser("info", help="summarize a cached panel (or every one in a folder)")
    show.add_argument("path")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            print(info(args.path))
            return 0
        source = parse_source(args.source, args.start, args.end, args.industry)
        result = convert(source, args.out, force=args.force)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = result.seconds
    timing = ("already cached (use --force to rebuild)" if result.cached else
              f"read {t['read']:.1f} s, build {t['build']:.1f} s, save {t['save']:.1f} s")
    print(info(result.path))
    print(f"time       {timing}; reload (mmap) {t['reload']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
