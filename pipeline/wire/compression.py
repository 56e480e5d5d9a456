"""ROOT compression blocks of kMESS_ZIP TMessages: checked, bounded decompression.

Every block header is read and checked before a byte is decompressed, and no block may produce more
than it declares, so a corrupt or hostile size word is a DecodeError, never a multi-GB allocation.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from typing import NamedTuple

import lz4.block
import xxhash
import zstandard

from pipeline.wire.errors import DecodeError

KMESS_ZIP = 0x20000000
_U32_BE = struct.Struct(">I")
_U32_LE = struct.Struct("<I")

# kMESS_ZIP: the uncompressed size a message may declare. The real mergers never compress, and the
# biggest uncompressed replies are a few MB per object, so this only stops a corrupt or hostile size
# word from turning into a multi-GB allocation.
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
# ROOT compression block header (RZip.cxx): 2-byte algorithm, method byte, 3-byte LE compressed size,
# 3-byte LE uncompressed size.
_BLOCK_HEADER_SIZE = 9
_COMPRESSION_ALGORITHMS = (b"ZL", b"L4", b"ZS", b"XZ", b"CS")
_LZ4_CHECKSUM_SIZE = 8  # xxhash64 of the LZ4 data, counted in the block's compressed size


class CompressionBlock(NamedTuple):
    """One ROOT compression block of a kMESS_ZIP message."""

    algorithm: bytes  # b"ZL", b"L4", b"ZS", b"XZ" or b"CS"
    data_start: int  # first byte after the 9-byte block header
    compressed_size: int
    uncompressed_size: int


def compression_blocks(payload: bytes) -> list[CompressionBlock]:
    """The compression blocks of a kMESS_ZIP message, checked before anything is decompressed.

    The declared uncompressed length (bytes 8-11, header included) must not exceed
    MAX_UNCOMPRESSED_BYTES + 8, the blocks must tile the rest of the message exactly, and their
    uncompressed sizes must add up to the declared length: a corrupt size word is then a DecodeError,
    never an allocation of that size.
    """
    size = len(payload)
    if size < 12 + _BLOCK_HEADER_SIZE:
        raise DecodeError(f"kMESS_ZIP payload of {size} bytes has no room for a compression block")
    (full_length,) = _U32_BE.unpack_from(payload, 8)
    declared = full_length - 8  # the length counts the 8-byte message header, which is not compressed
    if declared <= 0 or declared > MAX_UNCOMPRESSED_BYTES:
        raise DecodeError(
            f"kMESS_ZIP declares {full_length} uncompressed bytes, outside 9..{MAX_UNCOMPRESSED_BYTES + 8}"
        )
    blocks = []
    position = 12
    total = 0
    while position < size:
        if position + _BLOCK_HEADER_SIZE > size:
            raise DecodeError(f"compression block header at byte {position} is cut off")
        algorithm = payload[position : position + 2]
        if algorithm not in _COMPRESSION_ALGORITHMS:
            raise DecodeError(f"unknown compression algorithm {algorithm!r} at byte {position}")
        compressed = int.from_bytes(payload[position + 3 : position + 6], "little")
        uncompressed = int.from_bytes(payload[position + 6 : position + 9], "little")
        data_start = position + _BLOCK_HEADER_SIZE
        if compressed == 0 or uncompressed == 0:
            raise DecodeError(f"empty compression block at byte {position}")
        if data_start + compressed > size:
            raise DecodeError(
                f"compression block at byte {position} claims {compressed} bytes, "
                f"{data_start + compressed - size} more than the message holds"
            )
        total += uncompressed
        if total > declared:
            break  # reported below; stop before walking (or later decompressing) any further
        blocks.append(CompressionBlock(bytes(algorithm), data_start, compressed, uncompressed))
        position = data_start + compressed
    if total != declared:
        raise DecodeError(
            f"kMESS_ZIP declares {declared} uncompressed bytes after its header, "
            f"its compression blocks {'hold more' if total > declared else f'hold {total}'}"
        )
    return blocks


def _decompress_block(algorithm: bytes, data: memoryview, size: int) -> bytes:
    """One block, never producing more than `size` bytes (a small block cannot expand into GBs)."""
    if algorithm == b"ZL":
        inflater = zlib.decompressobj()
        output = inflater.decompress(data, size)
        finished = inflater.eof
    elif algorithm == b"XZ":
        unpacker = lzma.LZMADecompressor()
        output = unpacker.decompress(data, max_length=size)
        finished = unpacker.eof
    elif algorithm == b"ZS":
        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            parts = []
            remaining = size
            while remaining and (part := reader.read(remaining)):
                parts.append(part)
                remaining -= len(part)
            output = b"".join(parts)
            finished = reader.read(1) == b""
    elif algorithm == b"L4":
        checksum = int.from_bytes(data[:_LZ4_CHECKSUM_SIZE], "big")
        block = data[_LZ4_CHECKSUM_SIZE:]
        if xxhash.xxh64_intdigest(block) != checksum:
            raise DecodeError("LZ4 block checksum does not match its data")
        output = lz4.block.decompress(block, uncompressed_size=size)  # bounded by size
        finished = True
    else:  # b"CS": ROOT's own pre-zlib algorithm, unused for 20 years and unknown to uproot too
        raise DecodeError("legacy CS compression is not supported")
    if not finished or len(output) != size:
        raise DecodeError(f"a {algorithm.decode()} block does not decompress to the {size} bytes it declares")
    return output


def inflate(payload: bytes, what: int) -> bytes:
    """Turn a kMESS_ZIP message into the equivalent uncompressed message (length word updated)."""
    view = memoryview(payload)
    parts = []
    try:
        for number, block in enumerate(compression_blocks(payload)):
            data = view[block.data_start : block.data_start + block.compressed_size]
            try:
                parts.append(_decompress_block(block.algorithm, data, block.uncompressed_size))
            except DecodeError:
                raise
            except Exception as error:  # zlib.error, LZMAError, ZstdError, LZ4BlockError: corrupt data
                raise DecodeError(f"{block.algorithm.decode()} block {number} is corrupt: {error}") from error
    except DecodeError as error:
        raise DecodeError(f"cannot decompress kMESS_ZIP payload: {error}") from error
    body = b"".join(parts)
    # A consistent length word, so the result is itself a valid uncompressed TMessage.
    return _U32_LE.pack(len(body) + 4) + _U32_BE.pack(what & ~KMESS_ZIP) + body
