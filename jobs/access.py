"""Who may see what: the platform's one access rule, for every app, the API, the console and the WebSocket.

An operator (an active staff account) sees every row and runs queue-wide operations, unless its account
holds only view permissions on the engine's tables (a read-only operator: it sees and changes nothing);
any other signed-in user sees the rows they own; nobody else sees anything. Apps pass their own querysets
and name the owner field; they never test `is_staff` themselves.
"""
from __future__ import annotations

from typing import TypeAlias, TypeVar, cast

from django.contrib.auth import models as auth_models
from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, QuerySet

from jobs.exceptions import NotSignedIn

#: An account: a job's owner, an operator acting in the console. settings.AUTH_USER_MODEL is
#: Django's own User here; a project that swaps it changes this alias with it.
User: TypeAlias = auth_models.User
#: Whoever makes a request: an account, or AnonymousUser before signing in.
Viewer: TypeAlias = User | AnonymousUser

M = TypeVar("M", bound=Model)


def is_operator(user: Viewer | None) -> bool:
    """An active staff account: sees every owner's rows and may run queue-wide operations."""
    return is_member(user) and bool(getattr(user, "is_staff", False))


def is_read_only(user: Viewer | None) -> bool:
    """A read-only operator: a staff account given view permissions on the engine's tables and none to change
    them. It sees what an operator sees and acts on nothing, in the console and through the API alike."""
    if not is_operator(user) or getattr(user, "is_superuser", False):
        return False
    perms = user.get_all_permissions()  # type: ignore[union-attr]
    return any(p.startswith("jobs.view_") for p in perms) and not any(p.startswith("jobs.change_") for p in perms)


def is_member(user: Viewer | None) -> bool:
    """A signed-in, active account: may see its own rows (an operator sees everyone's)."""
    return bool(user is not None and user.is_authenticated and getattr(user, "is_active", False))


def visible(queryset: QuerySet[M], user: Viewer | None, *, owner: str = "owner") -> QuerySet[M]:
    """The rows of `queryset` that `user` may see: all for an operator, those whose `owner` is the user otherwise."""
    if is_operator(user):
        return queryset
    if not is_member(user):
        return queryset.none()
    return queryset.filter(**{owner: user})


def can_see(user: Viewer | None, queryset: QuerySet[M], pk: object, *, owner: str = "owner") -> bool:
    """Whether `user` may see the row `pk` of `queryset` (the same answer for "not yours" and "does not exist")."""
    return visible(queryset, user, owner=owner).filter(pk=pk).exists()


def signed_in(user: Viewer | None) -> User:
    """The account behind a request (its views already require one): the owner of what it creates."""
    owner = account(user)
    if owner is None:
        raise NotSignedIn("sign in, or send an API key as 'Authorization: Bearer <key>'")
    return owner


def account(user: Viewer | None) -> User | None:
    """The account to record as owner or actor: None for anonymous or system callers."""
    if isinstance(user, auth_models.AbstractBaseUser) and user.pk is not None:
        return cast(User, user)  # an instance of settings.AUTH_USER_MODEL, whatever it is
    return None
