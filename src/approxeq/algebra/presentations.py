"""The order of a finitely presented group by Todd–Coxeter coset enumeration: how a group given by
generators and relations (a learned representation's presentation) is checked against its table."""
from __future__ import annotations

from approxeq.algebra.groups import GroupError


def presentation_order(n_generators: int, relations, max_cosets: int = 200_000) -> int:
    """Order of the group <x_0, .., x_{k−1} | relations> by Todd–Coxeter coset enumeration (HLT).

    `relations` are words in generator positions (no inverse letters). Raises GroupError when more
    than `max_cosets` cosets are needed (an infinite or very large group). Used to check that a
    FiniteGroup's relations are a complete presentation: presentation_order(len(G.generators),
    G.relations) == G.order.
    """
    k = int(n_generators)
    if k == 0:
        return 1
    rels = [tuple(2 * int(p) for p in r) for r in relations if len(r)]  # column 2p: x_p, 2p+1: x_p⁻¹
    width = 2 * k
    table: list[list[int]] = [[-1] * width]
    parent = [0]

    def define(c: int, x: int) -> None:
        if len(table) >= max_cosets:
            raise GroupError(f"coset enumeration needs more than {max_cosets} cosets")
        new = len(table)
        table.append([-1] * width)
        parent.append(new)
        table[c][x] = new
        table[new][x ^ 1] = c

    def rep(c: int) -> int:
        root = c
        while parent[root] != root:
            root = parent[root]
        while parent[c] != root:
            parent[c], c = root, parent[c]
        return root

    def merge(a: int, b: int, queue: list[int]) -> None:
        a, b = rep(a), rep(b)
        if a != b:
            a, b = min(a, b), max(a, b)
            parent[b] = a
            queue.append(b)

    def coincidence(a: int, b: int) -> None:
        queue: list[int] = []
        merge(a, b, queue)
        i = 0
        while i < len(queue):
            dead = queue[i]
            i += 1
            for x in range(width):
                f = table[dead][x]
                if f == -1:
                    continue
                table[f][x ^ 1] = -1
                e1, f1 = rep(dead), rep(f)
                if table[e1][x] != -1:
                    merge(f1, table[e1][x], queue)
                elif table[f1][x ^ 1] != -1:
                    merge(e1, table[f1][x ^ 1], queue)
                else:
                    table[e1][x] = f1
                    table[f1][x ^ 1] = e1

    def scan_and_fill(c: int, word: tuple[int, ...]) -> None:
        f, b, i, j = c, c, 0, len(word) - 1
        while True:
            while i <= j and table[f][word[i]] != -1:
                f = table[f][word[i]]
                i += 1
            if i > j:
                if f != b:
                    coincidence(f, b)
                return
            while j >= i and table[b][word[j] ^ 1] != -1:
                b = table[b][word[j] ^ 1]
                j -= 1
            if j < i:
                coincidence(f, b)
                return
            if i == j:
                table[f][word[i]] = b
                table[b][word[i] ^ 1] = f
                return
            define(f, word[i])

    c = 0
    while c < len(table):
        if parent[c] == c:
            for word in rels:
                scan_and_fill(c, word)
                if parent[c] != c:
                    break
            if parent[c] == c:
                for x in range(width):
                    if table[c][x] == -1:
                        define(c, x)
        c += 1
    return sum(1 for i, p in enumerate(parent) if p == i)
