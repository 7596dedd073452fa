"""Which libraries a program links: its ELF dynamic section, ``ldd`` and ``ldconfig``.

``readelf -d`` where binutils is installed, a small reader of our own where not.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field


@dataclass
class ElfDynamic:
    """The parts of an ELF dynamic section we need."""

    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)  # RUNPATH and RPATH directories
    has_dynamic: bool = True


_READELF_ENTRY = re.compile(r"\((NEEDED|RUNPATH|RPATH)\)\s+[^\[]*\[([^\]]*)\]")


def parse_readelf_dynamic(text: str) -> ElfDynamic:
    """``readelf -d FILE``: NEEDED sonames and RUNPATH/RPATH directories.

    >>> parse_readelf_dynamic(
    ...     " 0x0000000000000001 (NEEDED)             Shared library: [libssl.so.3]\\n"
    ...     " 0x000000000000001d (RUNPATH)            Library runpath: [/usr/lib/postfix]\\n")
    ElfDynamic(needed=['libssl.so.3'], runpath=['/usr/lib/postfix'], has_dynamic=True)
    >>> parse_readelf_dynamic("\\nThere is no dynamic section in this file.\\n").has_dynamic
    False
    """
    dyn = ElfDynamic(has_dynamic="no dynamic section" not in (text or ""))
    for kind, value in _READELF_ENTRY.findall(text or ""):
        if kind == "NEEDED":
            dyn.needed.append(value)
        else:
            dyn.runpath.extend(d for d in value.split(":") if d)
    return dyn


_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 1, 5, 15, 29


def read_elf_dynamic(path: str) -> ElfDynamic | None:
    """Read the dynamic section without binutils (``readelf`` is missing on many servers).

    None when the file is not an ELF file this parser understands.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return _elf_dynamic(data)
    except (OSError, struct.error, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class _Segment:
    kind: int
    offset: int  # in the file
    vaddr: int  # in memory
    size: int  # in the file


def _elf_dynamic(data: bytes) -> ElfDynamic | None:
    layout = _layout(data)
    if layout is None:
        return None
    wide, order = layout
    segments = _segments(data, wide, order)
    dynamic = next((s for s in segments if s.kind == _PT_DYNAMIC), None)
    if dynamic is None:
        return ElfDynamic(has_dynamic=False)
    entries = _dynamic_entries(data, dynamic, wide, order)
    strtab = _file_offset(segments, next((v for tag, v in entries if tag == _DT_STRTAB), None))
    if strtab is None:
        return None
    return _named_entries(data, entries, strtab)


def _layout(data: bytes) -> tuple[bool, str] | None:
    """(64-bit, struct byte order) of an ELF file; None for anything else."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    wide = {1: False, 2: True}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    return None if wide is None or order is None else (wide, order)


def _segments(data: bytes, wide: bool, order: str) -> list[_Segment]:
    """The program headers."""
    if wide:
        (phoff,) = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
    segments = []
    for i in range(phnum):
        at = phoff + i * phentsize
        if wide:
            p_type, _, offset, vaddr, _, filesz = struct.unpack_from(order + "IIQQQQ", data, at)
        else:
            p_type, offset, vaddr, _, filesz = struct.unpack_from(order + "IIIII", data, at)
        segments.append(_Segment(p_type, offset, vaddr, filesz))
    return segments


def _dynamic_entries(
    data: bytes, dynamic: _Segment, wide: bool, order: str
) -> list[tuple[int, int]]:
    """(tag, value) of the dynamic section, up to its DT_NULL."""
    entry = order + ("qQ" if wide else "iI")
    entries = []
    for at in range(dynamic.offset, dynamic.offset + dynamic.size, struct.calcsize(entry)):
        tag, value = struct.unpack_from(entry, data, at)
        if tag == 0:
            break
        entries.append((tag, value))
    return entries


def _file_offset(segments: list[_Segment], vaddr: int | None) -> int | None:
    """Where the loadable segment holding address ``vaddr`` has it in the file."""
    if vaddr is None:
        return None
    return next(
        (
            s.offset + vaddr - s.vaddr
            for s in segments
            if s.kind == _PT_LOAD and s.vaddr <= vaddr < s.vaddr + s.size
        ),
        None,
    )


def _named_entries(data: bytes, entries: list[tuple[int, int]], strtab: int) -> ElfDynamic:
    """NEEDED and RUNPATH/RPATH, their names read from the string table at ``strtab``."""

    def string(offset: int) -> str:
        start = strtab + offset
        return data[start : data.index(b"\0", start)].decode("utf-8", "replace")

    dyn = ElfDynamic()
    for tag, value in entries:
        if tag == _DT_NEEDED:
            dyn.needed.append(string(value))
        elif tag in (_DT_RPATH, _DT_RUNPATH):
            dyn.runpath.extend(d for d in string(value).split(":") if d)
    return dyn


_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)")


def parse_ldd(text: str) -> dict[str, str | None]:
    """``ldd FILE``: soname -> path (None for "not found").

    >>> parse_ldd("\\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f)\\n"
    ...           "\\tlinux-vdso.so.1 (0x00007ffd)\\n\\tlibfoo.so.1 => not found\\n")
    {'libssl.so.3': '/lib/x86_64-linux-gnu/libssl.so.3', 'libfoo.so.1': None}
    """
    found: dict[str, str | None] = {}
    for line in (text or "").splitlines():
        match = _LDD_LINE.match(line)
        if match:
            name, path = match.groups()
            found[name] = path if path.startswith("/") else None
    return found


def ldd_ssl_lines(text: str) -> str:
    """What ``ldd FILE | grep ssl`` prints, given ldd's output.

    >>> ldd_ssl_lines("\\tlibz.so.1 => /lib/libz.so.1 (0x1)\\n"
    ...               "\\tlibssl.so.3 => /lib/libssl.so.3 (0x2)\\n")
    '\\tlibssl.so.3 => /lib/libssl.so.3 (0x2)'
    """
    return "\n".join(line for line in (text or "").splitlines() if "ssl" in line)


def parse_ldconfig(text: str) -> dict[str, str]:
    """``ldconfig -p``: soname -> path, first entry wins (the cache lists the preferred first).

    >>> parse_ldconfig("\\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\\n")
    {'libssl.so.3': '/lib/x86_64-linux-gnu/libssl.so.3'}
    """
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s*(\S+)\s+\([^)]*\)\s+=>\s+(\S+)", line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found
