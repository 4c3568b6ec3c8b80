"""Admin actions that change status: a confirmation page asking for a reason (and, where there
is a choice, the target), then the service for each selected record. Each record's outcome comes
back as its own message: the sentence the service's door wrote, or the refusal's sentence;
nothing is changed for a refused record."""

from collections.abc import Callable, Sequence

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from emr.kernel import decisions
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
    run: Callable[..., str | None],
    permission: str | None = None,
    choices: Sequence[tuple[str, str]] | Callable[[], Sequence[tuple[str, str]]] | None = None,
    choice_label: str = "New status",
    checklist: Callable[[object], object] | None = None,
    summary: Callable[[list], Sequence[str]] | None = None,
):
    """An admin action calling `run(obj, actor=…, reason=…[, target=…])` per selected object.

    `run` returns the sentence staff read about that object (naming it, since several are
    reported together), or None for a generic one. `checklist(obj)` (a preflight, or None) is
    shown for each object on the confirmation page; `summary(objects)` gives lines shown above
    them, such as what the whole selection adds up to.
    """
    label = description.split("…")[0].strip()

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
        objects = list(queryset)
        checklists = {obj.pk: checklist(obj) if checklist else None for obj in objects}
        shown = {
            obj.pk: decisions.shown(
                action=f"{modeladmin.opts.label_lower}.{name}",
                consequence=description,
                checklist=checklists[obj.pk],
            )
            for obj in objects
        }
        # In the order of their ids: the list shown may come back in another order.
        pages = [shown[pk] for pk in sorted(shown)]
        where = f"{modeladmin.opts.label_lower}:{name}:{','.join(str(pk) for pk in sorted(shown))}"
        stale = "confirm" in request.POST and not decisions.matches(
            request.POST.get("shown"), pages, where
        )
        if "confirm" in request.POST:
            form = ActionForm(request.POST)
            if form.is_valid() and not stale:
                actor = Actor.staff(request.user, door=Door.ADMIN)
                reason = form.cleaned_data["reason"]
                extra = {"target": form.cleaned_data["target"]} if choices else {}
                for obj in objects:
                    try:
                        with decisions.deciding(
                            record=obj, shown=shown[obj.pk], actor=actor, reason=reason
                        ):
                            sentence = run(obj, actor=actor, reason=reason, **extra)
                    except DomainError as error:
                        modeladmin.message_user(
                            request, f"{obj}: refused. {error.detail}", level=messages.ERROR
                        )
                    else:
                        modeladmin.message_user(
                            request,
                            sentence or f"{obj}: {label} done; its history shows what changed.",
                            level=messages.SUCCESS,
                        )
                return None
        else:
            form = ActionForm()
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "action_label": label,
            "objects": objects,
            "summary": summary(objects) if summary else [],
            "checklists": [preflight for preflight in checklists.values() if preflight is not None],
            "shown_signed": decisions.signed(pages, where),
            "stale": stale,
            "form": form,
            "action_name": name,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/reasoned_action.html", context)

    action.__name__ = name
    return admin.action(description=description)(action)
