"""Published ports and the bridges' masquerading through the kernel's nftables, driven by ``nft``.

Everything lives in one table of our own, ``ip dct`` (chains ``prerouting``/``output`` for DNAT,
``postrouting`` for masquerade), so the host's own ruleset is never edited; every rule carries a
comment naming its owner (a container's tag or ``bridge:<name>``) and is deleted by handle.
nftables rather than iptables: the kernel's current NAT, one atomic batch per change (``nft -f``),
a JSON listing to find our rules, and on Debian/Ubuntu the ``nftables`` package is the default.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from ...errors import SystemError

TABLE = "dct"
_CHAINS = ("add chain ip dct prerouting { type nat hook prerouting priority dstnat; }\n"
           "add chain ip dct output { type nat hook output priority -100; }\n"
           "add chain ip dct postrouting { type nat hook postrouting priority srcnat; }\n")


def nft_path() -> str:
    """The ``nft`` executable. Raises SystemError naming the package when it is missing."""
    path = shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise SystemError("publishing ports needs the nft tool (install the nftables package)")
    return path


def _run(args: list[str], script: str | None = None) -> str:
    proc = subprocess.run([nft_path(), *args], input=script, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemError(f"nft {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


def _comment(owner: str) -> str:
    return json.dumps(owner)  # nft takes a double-quoted string


def publish(owner: str, ports: list, address: str) -> list[list]:
    """DNAT each of ``ports`` (configs.PortMapping) to ``address`` (the container's IPv4), in one batch.

    ``0.0.0.0`` matches any local address (``fib daddr type local``); connections from the host
    itself (``output``) are DNATed too, and those from 127.0.0.0/8 masqueraded so that replies
    come back. Returns the rules as ``[chain, handle]`` (nft's echo), so that :func:`remove` needs
    no listing. Raises SystemError with nft's message.
    """
    lines = [f"add table ip {TABLE}\n", _CHAINS]
    for p in ports:
        match = "fib daddr type local" if p.host_ip == "0.0.0.0" else f"ip daddr {p.host_ip}"
        dnat = (f"{match} {p.protocol} dport {p.host_port} dnat to {address}:{p.container_port} "
                f"comment {_comment(owner)}")
        lines.append(f"add rule ip {TABLE} prerouting {dnat}\n")
        lines.append(f"add rule ip {TABLE} output {dnat}\n")
        lines.append(f"add rule ip {TABLE} postrouting ip saddr 127.0.0.0/8 ip daddr {address} "
                     f"{p.protocol} dport {p.container_port} masquerade comment {_comment(owner)}\n")
    out = _run(["--echo", "--handle", "-f", "-"], "".join(lines))
    return [[line.split()[4], int(line.rsplit("# handle ", 1)[1])]  # add rule ip dct <chain> … # handle N
            for line in out.splitlines() if line.startswith(f"add rule ip {TABLE} ") and "# handle " in line]


def masquerade(owner: str, subnet: str, bridge: str) -> None:
    """Masquerade what leaves ``subnet`` through any interface but ``bridge`` (containers reach out)."""
    _run(["-f", "-"], f"add table ip {TABLE}\n{_CHAINS}add rule ip {TABLE} postrouting ip saddr {subnet} "
                      f"oifname != {json.dumps(bridge)} masquerade comment {_comment(owner)}\n")


def rules(owner: str | None = None) -> list[tuple[str, int, str]]:
    """Our rules as ``(chain, handle, owner)``, only ``owner``'s when given; [] when there is no table
    (or no nft: then there can be no rule of ours)."""
    if shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
        return []
    proc = subprocess.run([nft_path(), "-j", "list", "table", "ip", TABLE], capture_output=True, text=True)
    if proc.returncode != 0:
        return []  # no table: nothing of ours
    out = []
    for item in json.loads(proc.stdout).get("nftables", []):
        rule = item.get("rule")
        if rule and (owner is None or rule.get("comment") == owner):
            out.append((rule["chain"], rule["handle"], rule.get("comment", "")))
    return out


def remove(owner: str, handles: list[list] | None = None) -> int:
    """Delete every rule of ``owner`` (one batch); the number deleted. Raises SystemError.

    ``handles`` (from :func:`publish`) are deleted at once; if that fails (a rule is gone, the
    table was flushed), the table is listed and the owner's rules deleted by their comment.
    """
    if handles:
        try:
            _run(["-f", "-"], "".join(f"delete rule ip {TABLE} {chain} handle {handle}\n" for chain, handle in handles))
            return len(handles)
        except SystemError:
            pass  # one of them is gone: find what is left by its comment
    found = rules(owner)
    if found:
        _run(["-f", "-"], "".join(f"delete rule ip {TABLE} {chain} handle {handle}\n" for chain, handle, _ in found))
    return len(found)


def drop_if_empty() -> None:
    """Delete our table once no rule is left in it (after the last bridge goes); no table, no-op."""
    if shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin") is not None and not rules():
        subprocess.run([nft_path(), "delete", "table", "ip", TABLE], capture_output=True)  # absent: fine
