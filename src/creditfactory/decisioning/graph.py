"""The relationship graph online: a bounded search around one applicant, and adding one.

The search is a breadth-first search with one set-based query per hop (``links`` of the whole
frontier at once), so its cost grows with the neighbourhood, never with the graph. The applicant
need not be in the graph yet: the search starts from the applicant's person node when it exists
*and* from the nodes of the attributes this application brings (its phone, device, IP, address,
contacts), as if the application had already been added — the facts describe the graph the
decision will leave behind, without writing anything.

Super-nodes are reached but never expanded: a node with more than ``degree_cap`` links (a
carrier's shared IP address, a hotline many people give as a contact) would otherwise pull
thousands of strangers into every search. When a search skips one, or stops at ``max_nodes``
or ``group_cap``, ``graph_truncated`` is true and the counts are lower bounds (the people behind
a skipped node are counted by its degree in the ``graph_shared_*`` facts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from creditfactory.decisioning import store
from creditfactory.decisioning.model import (
    EDGE_TARGET,
    GROUP_EDGES,
    Applicant,
    EdgeKind,
    FactSettings,
    NodeKind,
)
from creditfactory.decisioning.store import Link, NodeRow

_GROUP_KINDS = frozenset(k.value for k in GROUP_EDGES)


@dataclass(frozen=True, slots=True)
class Search:
    """What a search around an applicant found (``values`` are the ``graph_*`` facts)."""

    values: dict[str, object]
    device: NodeRow | None
    device_people: int | None
    queries: int


class _Adjacency:
    """Links out of nodes, fetched once per node for the whole search, a frontier at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.out: dict[int, list[Link]] = {}
        self.queries = 0

    def preload(self, sources: set[int], found: list[Link]) -> None:
        """Links already fetched: every link out of each of ``sources``."""
        fresh = {i for i in sources if i not in self.out}
        for i in fresh:
            self.out[i] = []
        for link in found:
            if link.src in fresh:
                self.out[link.src].append(link)

    def expand(self, ids: list[int]) -> list[Link]:
        missing = [i for i in ids if i not in self.out]
        if missing:
            self.queries += 1
            for i in missing:
                self.out[i] = []
            for link in store.links(self.conn, missing):
                self.out[link.src].append(link)
        return [link for i in ids for link in self.out[i]]


def _seed_nodes(applicant: Applicant) -> dict[tuple[str, str], list[EdgeKind]]:
    seeds: dict[tuple[str, str], list[EdgeKind]] = {}
    for kind, key in applicant.links():
        seeds.setdefault((EDGE_TARGET[kind].value, key), []).append(kind)
    return seeds


def neighbourhood(
    conn: Connection, applicant: Applicant, settings: FactSettings, *, velocity: bool = False
) -> store.Neighbourhood:
    """The applicant's neighbourhood as :func:`search` reads it, in one round trip; with
    ``velocity`` the applicant's velocity counts in the same one (``Neighbourhood.velocity``)."""
    return store.neighbourhood(
        conn,
        person_key=applicant.id_number_token,
        seeds=list(_seed_nodes(applicant)),
        levels=settings.max_hops,
        cap=settings.degree_cap,
        limit=4 * settings.max_nodes,
        velocity_of=applicant if velocity else None,
    )


def search(
    conn: Connection, applicant: Applicant, settings: FactSettings, near: store.Neighbourhood | None = None
) -> Search:
    """Graph facts of an applicant (see ``docs/decisioning.md``, *Relationship graph*), from its
    :func:`neighbourhood` (read here unless given)."""
    seeds = _seed_nodes(applicant)
    person_key = (NodeKind.PERSON.value, applicant.id_number_token)
    cap = settings.degree_cap
    # The whole neighbourhood in one round trip; the search below then runs on it in memory.
    if near is None:
        near = neighbourhood(conn, applicant, settings)
    found = near.start
    person = found.get(person_key)
    me = person.id if person is not None else None
    adjacency = _Adjacency(conn)
    info: dict[int, NodeRow] = {n.id: n for n in found.values()}
    truncated = not near.complete
    sources: set[int] = set() if me is None else {me}
    reached = {found[k].id for k in seeds if k in found}
    usable = len(near.levels)
    if not near.complete:  # the row limit cut a level short: use only the levels before it
        usable = max((i for i, level in enumerate(near.levels) if level), default=0)
    for level in near.levels[:usable]:
        adjacency.preload(sources, level)
        for link in level:
            info.setdefault(link.dst, link.target)
        reached |= {link.dst for link in level}
        sources = {n for n in reached if info[n].degree <= cap}
        reached = set()
    # Hop 1: the nodes this application links to, and those the person is linked to already.
    first: dict[int, set[str]] = {}
    linked_before: set[int] = set()
    for key, kinds in seeds.items():
        if key in found:
            first.setdefault(found[key].id, set()).update(k.value for k in kinds)
    if me is not None:
        for link in adjacency.expand([me]):
            info[link.dst] = link.target
            first.setdefault(link.dst, set()).add(link.kind)
            linked_before.add(link.dst)
    dist: dict[int, int] = {} if me is None else {me: 0}
    for node_id in first:
        dist.setdefault(node_id, 1)

    shared: dict[str, set[int]] = {"device": set(), "contact": set(), "ip": set()}
    behind: dict[str, int] = {"device": 0, "contact": 0, "ip": 0}
    frontier = [n for n, d in dist.items() if d == 1]
    for hop in range(2, settings.max_hops + 1):
        if not frontier:
            break
        if len(dist) >= settings.max_nodes:
            truncated = True
            break
        expand = [n for n in frontier if info[n].degree <= cap]
        if len(expand) < len(frontier):
            truncated = True
            if hop == 2:
                for n in frontier:
                    if info[n].degree > cap:
                        family = _share_family(info[n].kind, first.get(n, set()), None)
                        if family is not None:
                            behind[family] += info[n].degree - (1 if n in linked_before else 0)
        new: list[int] = []
        for link in adjacency.expand(expand):
            info.setdefault(link.dst, link.target)
            if link.dst not in dist:
                dist[link.dst] = hop
                new.append(link.dst)
            if hop == 2 and link.dst != me and link.target.kind == NodeKind.PERSON:
                family = _share_family(info[link.src].kind, first.get(link.src, set()), link.kind)
                if family is not None:
                    shared[family].add(link.dst)
        frontier = new

    hops = [d for n, d in dist.items() if info[n].negative]
    within = [n for n, d in dist.items() if 1 <= d <= settings.neighbour_hops]
    people_near = [info[n] for n in within if info[n].kind == NodeKind.PERSON and n != me]

    group, group_cut = _group_size(adjacency, info, me, first, settings)
    values: dict[str, object] = {
        "graph_hops_to_negative": min(hops) if hops else None,
        "graph_component_size": group,
        "graph_negative_neighbours": sum(1 for n in within if info[n].negative),
        "graph_declined_neighbours": sum(1 for p in people_near if p.declined),
        "graph_defaulted_neighbours": sum(1 for p in people_near if p.defaulted),
        "graph_shared_device_customers": len(shared["device"]) + behind["device"],
        "graph_shared_contact_customers": len(shared["contact"]) + behind["contact"],
        "graph_shared_ip_customers": len(shared["ip"]) + behind["ip"],
        "graph_truncated": truncated or group_cut,
    }

    device = None
    device_people = None
    if applicant.device_fingerprint is not None:
        device = found.get((NodeKind.DEVICE.value, applicant.device_fingerprint))
        device_people = 0
        if device is not None:
            if device.id in adjacency.out:
                device_people = len({link.dst for link in adjacency.out[device.id] if link.dst != me})
            else:
                device_people = device.degree - (1 if device.id in linked_before else 0)
    return Search(values=values, device=device, device_people=device_people, queries=adjacency.queries + 1)


def _share_family(attr_kind: str, first_kinds: set[str], second_kind: str | None) -> str | None:
    """Which ``graph_shared_*`` count a person reached through an attribute node belongs to."""
    if attr_kind == NodeKind.DEVICE:
        return "device"
    if attr_kind == NodeKind.IP:
        return "ip"
    if attr_kind == NodeKind.PHONE and (
        EdgeKind.CONTACT in first_kinds or second_kind in (None, EdgeKind.CONTACT)
    ):
        return "contact"
    return None


def _group_size(
    adjacency: _Adjacency,
    info: dict[int, NodeRow],
    me: int | None,
    first: dict[int, set[str]],
    settings: FactSettings,
) -> tuple[int, bool]:
    """People linked to the applicant through group edges (shared phone, device, IP, address),
    the applicant included, capped at ``group_cap``; and whether a cap or a super-node cut it."""
    cap = settings.degree_cap
    people: set[int] = set()
    seen_attrs: set[int] = set()
    attrs = [n for n, kinds in first.items() if kinds & _GROUP_KINDS]
    seen_attrs.update(attrs)
    cut = False
    for _ in range(settings.group_rounds):
        if not attrs:
            return 1 + len(people), cut
        expand = [n for n in attrs if info[n].degree <= cap]
        cut = cut or len(expand) < len(attrs)
        new_people = []
        for link in adjacency.expand(expand):
            if link.kind in _GROUP_KINDS and link.dst != me and link.dst not in people:
                info.setdefault(link.dst, link.target)
                people.add(link.dst)
                new_people.append(link.dst)
        if 1 + len(people) >= settings.group_cap:
            return settings.group_cap, True
        if len(seen_attrs) + len(people) >= settings.max_nodes:
            return 1 + len(people), True
        expand = [n for n in new_people if info[n].degree <= cap]
        cut = cut or len(expand) < len(new_people)
        attrs = []
        for link in adjacency.expand(expand):
            if link.kind in _GROUP_KINDS and link.dst not in seen_attrs:
                info.setdefault(link.dst, link.target)
                seen_attrs.add(link.dst)
                attrs.append(link.dst)
    return 1 + len(people), bool(attrs) or cut


# ------------------------------------------------------------------ adding one application


@dataclass(frozen=True, slots=True)
class Added:
    person_id: int
    links_added: int


def add_applicant(conn: Connection, applicant: Applicant, *, declined: bool = False) -> Added:
    """Put an application into the graph: its person node (with the customer id when known) and
    a link to each attribute node (created when new, first seen on the business date). With
    ``declined`` the person node is marked declined in the same write."""
    nodes = store.ensure_nodes(
        conn, wanted_nodes(applicant), customer_id=applicant.customer_id, person_declined=declined
    )
    return link_applicant(conn, applicant, nodes)


def wanted_nodes(applicant: Applicant) -> dict[tuple[str, str], date | None]:
    """The nodes of an application, ``(kind, key) -> first seen``: its person and attributes,
    first seen on its business date."""
    day: date = applicant.business_date
    wanted: dict[tuple[str, str], date | None] = {(NodeKind.PERSON.value, applicant.id_number_token): day}
    for kind, key in applicant.links():
        wanted[(EDGE_TARGET[kind].value, key)] = day
    return wanted


def link_applicant(conn: Connection, applicant: Applicant, nodes: dict[tuple[str, str], NodeRow]) -> Added:
    """Link the application's person node to each of its attribute nodes (``nodes``, as
    :func:`store.ensure_nodes` returns them for :func:`wanted_nodes`)."""
    person = nodes[(NodeKind.PERSON.value, applicant.id_number_token)]
    pairs = [
        (person.id, nodes[(EDGE_TARGET[kind].value, key)].id, kind.value) for kind, key in applicant.links()
    ]
    return Added(person_id=person.id, links_added=store.add_edges(conn, pairs))
