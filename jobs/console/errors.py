"""The console's one place for domain errors, as jobs.api.errors is the API's.

Console views call services and selectors and let JobsError propagate; `operator_view` shows it to
the operator: on a form post, as the admin's error message and a redirect back to the page the form
was on; on a page that names something missing, as the 404 page; on a fetch() that asks for JSON,
as `{message, extra}` with the error's status.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from jobs.exceptions import JobsError

View = Callable[..., HttpResponse]


def operator_view(site: admin.AdminSite, view: View) -> View:
    """`site.admin_view(view)` (staff login, CSRF, no caching), with domain errors shown to the operator."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except JobsError as exc:
            return error_response(request, exc, site=site)

    return site.admin_view(wrapped)


def error_response(request: HttpRequest, exc: JobsError, *, site: admin.AdminSite) -> HttpResponse:
    """The answer to a refused operation: JSON for a script; the admin's 404 page for a page that names nothing
    the operator may see; else the error as a message and a redirect back."""
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return JsonResponse({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if exc.status_code == 404 and request.method in ("GET", "HEAD"):
        raise Http404(exc.message) from exc
    messages.error(request, exc.message)
    return HttpResponseRedirect(back_url(request, site=site))


def require(request: HttpRequest, perm: str, doing: str) -> None:
    """Refuse a console operation (403) to an account without `perm`: the one check behind every operation's button."""
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"{doing} needs the '{perm}' permission")


def report(request: HttpRequest, text: str, done: int, skipped: dict[str, str]) -> None:
    """Tell the operator what an operation changed (`text`), and why the rows it left alone were left."""
    messages.add_message(request, messages.SUCCESS if done or not skipped else messages.WARNING, text)
    if skipped:
        sample = "; ".join(list(skipped.values())[:3])
        messages.warning(request, f"Skipped {len(skipped)}: {sample}{' …' if len(skipped) > 3 else ''}")


def back_url(request: HttpRequest, *, site: admin.AdminSite) -> str:
    """The page the request came from, if it is on this site; else the console's index."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return referer
    return reverse("admin:index", current_app=site.name)
