"""What deleting rows would take with it, and the permissions that needs: one implementation for
the admin's delete pages and the API's deletes.

Django's admin asks the deletion collector, which loads every row a deletion would take with
it: for a model with millions of records, millions of rows. Here each kind of related row is
counted (or, where only its presence matters, looked for) with one query, the rows to delete
given as subqueries, so that nothing is loaded however large the cascade. As in the admin, a
user needs the ``delete`` permission of every type of row the deletion would take with it, but
only of the types that have such rows.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce

from django.db.models import CASCADE, PROTECT, Model, Q, QuerySet


@dataclass(frozen=True, slots=True)
class Related:
    """Rows of ``model`` that a deletion would delete too (``protected`` False) or that keep it
    from happening (``protected`` True). ``count`` is exact, or 1 for "some" when only
    presence was asked for."""

    model: type[Model]
    count: int
    protected: bool

    @property
    def label(self) -> str:
        """``1 record``, ``1,204 records``."""
        opts = self.model._meta
        noun = opts.verbose_name if self.count == 1 else opts.verbose_name_plural
        return f"{self.count:,} {noun}"


def related_rows(
    model: type[Model], rows: QuerySet, *, exact: bool = True, protected: bool = True
) -> list[Related]:
    """The rows that deleting ``rows`` (of ``model``) would delete too, through ``CASCADE``
    relations followed as far as they go, and (with ``protected``) the rows that ``PROTECT``
    them; only kinds that have rows, in the order of the relations.

    One query per kind of row (``COUNT``, or ``EXISTS`` when not ``exact``): a kind reached
    through several relations (records point at an experiment and at its seasons) is asked
    for once, every relation OR-ed, so that no row is counted twice.
    """
    filters: dict[tuple[type[Model], bool], list[Q]] = {}
    expanded: set[type[Model]] = set()
    level: list[tuple[type[Model], QuerySet]] = [(model, rows)]
    while level:
        next_level = []
        for parent, parent_rows in level:
            if parent in expanded:  # a cycle of cascades: its rows are asked for already
                continue
            expanded.add(parent)
            for relation in parent._meta.related_objects:
                if relation.many_to_many or relation.on_delete not in (CASCADE, PROTECT):
                    continue
                is_protect = relation.on_delete is PROTECT
                if is_protect and not protected:
                    continue
                child: type[Model] = relation.related_model
                condition = Q(**{f"{relation.field.name}__in": parent_rows})
                filters.setdefault((child, is_protect), []).append(condition)
                if not is_protect:
                    next_level.append((child, child._base_manager.filter(condition)))
        level = next_level
    found = []
    for (child, is_protect), conditions in filters.items():
        matching = child._base_manager.filter(reduce(operator.or_, conditions))
        count = matching.count() if exact else int(matching.exists())
        if count:
            found.append(Related(child, count, is_protect))
    return found


def missing_delete_permissions(user, related: list[Related]) -> list[type[Model]]:
    """The types of row the deletion would delete that ``user`` may not delete."""
    missing = []
    for item in related:
        opts = item.model._meta
        if not item.protected and not user.has_perm(f"{opts.app_label}.delete_{opts.model_name}"):
            missing.append(item.model)
    return missing


def _and_join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def check_delete_permissions(user, instance: Model) -> str | None:
    """Why ``user`` may not delete ``instance`` with what it takes along (one sentence), or
    None when they may. Only asks whether related rows exist, never counts them."""
    model = type(instance)
    related = related_rows(
        model, model._base_manager.filter(pk=instance.pk), exact=False, protected=False
    )
    missing = missing_delete_permissions(user, related)
    if not missing:
        return None
    names = sorted(str(kind._meta.verbose_name_plural) for kind in missing)
    return (
        f"You need the permission to delete {_and_join(names)} to delete this "
        f"{model._meta.verbose_name}."
    )
