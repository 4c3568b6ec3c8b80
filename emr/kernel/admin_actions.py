"""Admin actions that change status: a confirmation page asking for a reason (and, where there
is a choice, the target), then the service for each selected record. Refusals come back as
messages with the service's sentence; nothing is changed for a refused record."""

from collections.abc import Callable, Sequence

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the audit history with your name.",
    )


def reasoned_action(
    *,
    name: str,
    description: str,
    run: Callable[..., object],
    permission: str | None = None,
    choices: Sequence[tuple[str, str]] | Callable[[], Sequence[tuple[str, str]]] | None = None,
    choice_label: str = "New status",
    checklist: Callable[[object], object] | None = None,
):
    """An admin action calling `run(obj, actor=…, reason=…[, target=…])` per selected object.

    `checklist(obj)` (a preflight) is shown for each object on the confirmation page.
    """

    class ActionForm(ReasonForm):
        if choices:
            # A callable is read at each request (e.g. the plans on sale now).
            target = forms.ChoiceField(choices=choices, label=choice_label)

    def action(modeladmin, request, queryset):
        if permission and not request.user.has_perm(permission):
            modeladmin.message_user(
                request, "Your role does not allow this action.", level=messages.ERROR
            )
            return None
        if "confirm" in request.POST:
            form = ActionForm(request.POST)
            if form.is_valid():
                actor = Actor.staff(request.user, door=Door.ADMIN)
                extra = {"target": form.cleaned_data["target"]} if choices else {}
                for obj in queryset:
                    try:
                        run(obj, actor=actor, reason=form.cleaned_data["reason"], **extra)
                    except DomainError as error:
                        modeladmin.message_user(
                            request, f"{obj}: refused. {error.detail}", level=messages.ERROR
                        )
                    else:
                        modeladmin.message_user(request, f"{obj}: done.", level=messages.SUCCESS)
                return None
        else:
            form = ActionForm()
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "objects": queryset,
            "checklists": [checklist(obj) for obj in queryset] if checklist else [],
            "form": form,
            "action_name": name,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/reasoned_action.html", context)

    action.__name__ = name
    return admin.action(description=description)(action)
