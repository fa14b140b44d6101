"""A stand-in for the original service's TaskExecutor (Python, Supabase), with its interface:
TaskExecutor().execute_all_steps(creator_id, max_workers, supabase_url, supabase_api_key).

Like the original it talks on stdout while it works and returns a dict; creator_id is the
creator's id in Supabase (a uuid). The real one reads the creator from Supabase and draws its
images; this one draws small PNGs so the example runs anywhere. Replace the import in
run_legacy.py with the real module to run the real thing.
"""
import base64
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor


def _png(seed, side=16):
    rows = b"".join(b"\x00" + bytes(v for x in range(side) for v in ((x * seed + y * 7) % 256, (y * seed) % 256, seed % 256))
                    for y in range(side))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class TaskExecutor:
    STEPS = ["avatar", "banner", "thumbnail"]

    def _run_step(self, creator_id, step, index):
        print(f"[TaskExecutor] {creator_id}: running {step}")  # the original's chatter, on stdout
        return {"step": step, "png": _png(index * 40 + len(creator_id) + 1)}

    def execute_all_steps(self, creator_id, max_workers, supabase_url, supabase_api_key):
        print(f"[TaskExecutor] connecting to {supabase_url}")
        if not supabase_api_key:
            raise RuntimeError("no Supabase API key")
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            results = list(pool.map(lambda p: self._run_step(creator_id, p[1], p[0]), enumerate(self.STEPS)))
        print(f"[TaskExecutor] {creator_id}: all steps done")
        return {"creator_id": creator_id, "steps": [r["step"] for r in results],
                "images": [base64.b64encode(r["png"]).decode() for r in results]}
