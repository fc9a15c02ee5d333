#!/usr/bin/env python3
"""Builds the PNG character cards in tests/testdata/cards/ from the JSON cards beside them.

Each PNG is a tiny valid image (2x2 RGBA) carrying cards the way card sites share them:
base64 JSON in tEXt chunks keyed "chara" (V1/V2) and "ccv3" (V3). Standard library only.

    python3 scripts/cards/make_png_cards.py            # rewrites the PNGs
    python3 scripts/cards/make_png_cards.py --check    # exits 1 if a PNG is out of date

Outputs:
  lighthouse_keeper.png    chara = v2_lighthouse_keeper.json; the chunk sits before IDAT,
                           next to an unrelated tEXt "Software" chunk
  clockwork_archivist.png  ccv3 = v3_clockwork_archivist.json, and chara = the same card
                           relabelled as V2 (what V3 editors write for older readers)
  no_card.png              the image alone, with no card chunk
"""

import argparse
import base64
import json
import pathlib
import struct
import sys
import zlib

CARDS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "testdata" / "cards"
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def text_chunk(keyword: str, text: str) -> bytes:
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))


def card_chunk(keyword: str, card_json: str) -> bytes:
    return text_chunk(keyword, base64.b64encode(card_json.encode("utf-8")).decode("ascii"))


def image_chunks():
    """IHDR and IDAT of a 2x2 RGBA image (a lantern-yellow pixel in a dark sea)."""
    width, height = 2, 2
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    rows = [bytes([0, 20, 30, 60, 255, 240, 200, 40, 255]),  # filter byte 0, then 2 pixels
            bytes([0, 20, 30, 60, 255, 20, 30, 60, 255])]
    idat = chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
    return ihdr, idat


def compact(path: pathlib.Path) -> str:
    """The card as compact JSON (what card tools embed)."""
    return json.dumps(json.loads(path.read_text(encoding="utf-8")), ensure_ascii=False,
                      separators=(",", ":"))


def build() -> dict:
    ihdr, idat = image_chunks()
    iend = chunk(b"IEND", b"")
    v2 = compact(CARDS / "v2_lighthouse_keeper.json")
    v3_card = json.loads((CARDS / "v3_clockwork_archivist.json").read_text(encoding="utf-8"))
    v3 = json.dumps(v3_card, ensure_ascii=False, separators=(",", ":"))
    v3_as_v2 = dict(v3_card, spec="chara_card_v2", spec_version="2.0")
    v3_fallback = json.dumps(v3_as_v2, ensure_ascii=False, separators=(",", ":"))
    return {
        "lighthouse_keeper.png": SIGNATURE + ihdr + text_chunk("Software", "make_png_cards.py")
        + card_chunk("chara", v2) + idat + iend,
        "clockwork_archivist.png": SIGNATURE + ihdr + idat + card_chunk("chara", v3_fallback)
        + card_chunk("ccv3", v3) + iend,
        "no_card.png": SIGNATURE + ihdr + idat + iend,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the PNGs are current")
    args = parser.parse_args()
    stale = []
    for name, data in build().items():
        path = CARDS / name
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
            print(f"wrote {path} ({len(data)} bytes)")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
