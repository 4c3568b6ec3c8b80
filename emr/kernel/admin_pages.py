"""Admin pages of audited records: read-only forms, and tools on the page.

A record that carries money, status, consent or a link between a patient and money is never
rewritten by a model form: its page shows it, and each change is a tool — a button opening a
confirmation page (what will happen, the guide's checklist, a required reason), then the
service every other door calls. The result comes back as a sentence saying what happened.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from emr.kernel import decisions
from emr.kernel.actors import Actor, Door
from emr.kernel.admin_actions import ReasonForm
from emr.kernel.errors import DomainError


class ReadOnlyAdminMixin:
    """Nobody adds, edits or deletes these rows by hand; the page is for reading."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@dataclass(frozen=True)
class RecordTool:
    """One button on a record's page.

    `run(obj, actor=…, reason=…, data=cleaned_data)` calls the service and returns the sentence
    staff read afterwards. `offered(obj)` hides a button the record's state would refuse, so a
    tool is never offered and then refused for a reason the page already knew. `checklist(obj)`
    returns the guide's preflight for the confirmation page (anything with `action`, `items`,
    `blocked` and `will_not_do`).
    """

    name: str
    label: str
    permission: str
    consequence: str
    run: Callable[..., str]
    form_class: type[forms.Form] = ReasonForm
    offered: Callable[[object], bool] = field(default=lambda obj: True)
    checklist: Callable[[object], object] | None = None
    form_kwargs: Callable[[object], dict] = field(default=lambda obj: {})


class RecordToolsMixin:
    """Adds `record_tools` to a ModelAdmin: the buttons, their confirmation pages and URLs.

    The change form template includes "admin/record_tools.html" where the buttons belong.
    """

    record_tools: tuple[RecordTool, ...] = ()

    def tools_for(self, obj, user) -> list[RecordTool]:
        return [
            tool
            for tool in self.record_tools
            if tool.offered(obj) and user.has_perm(tool.permission)
        ]

    def refusal_message(self, obj, error: DomainError):
        return format_html("Refused ({}): {}", error.code, error.detail)

    def tool_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_tool"

    def get_urls(self):
        tools = [
            path(
                "<path:object_id>/tool/<str:tool_name>/",
                self.admin_site.admin_view(self.tool_view),
                name=self.tool_url_name(),
            )
        ]
        return tools + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context = {
                "record_tools": self.tools_for(obj, request.user),
                "record_tool_url": f"admin:{self.tool_url_name()}",
                "record": obj,
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def tool_view(self, request, object_id, tool_name):
        obj = self.get_object(request, unquote(object_id))
        tool = next((tool for tool in self.record_tools if tool.name == tool_name), None)
        if obj is None or tool is None:
            raise Http404("No such record or tool.")
        back = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        if not request.user.has_perm(tool.permission):
            messages.error(
                request, "Your role does not allow this. Ask a CS lead or billing admin."
            )
            return HttpResponseRedirect(back)
        if not tool.offered(obj):
            messages.error(request, f"{obj} can no longer be changed this way; see its page.")
            return HttpResponseRedirect(back)
        form = tool.form_class(request.POST or None, **tool.form_kwargs(obj))
        preflight = tool.checklist(obj) if tool.checklist else None
        shown = decisions.shown(
            action=f"{self.opts.label_lower}.{tool.name}",
            consequence=tool.consequence,
            checklist=preflight,
        )
        where = f"{self.opts.label_lower}:{obj.pk}:{tool.name}"
        stale = request.method == "POST" and not decisions.matches(
            request.POST.get("shown"), [shown], where
        )
        if request.method == "POST" and form.is_valid() and not stale:
            data = dict(form.cleaned_data)
            reason = data.pop("reason")
            actor = Actor.staff(request.user, door=Door.ADMIN)
            try:
                with decisions.deciding(record=obj, shown=shown, actor=actor, reason=reason):
                    sentence = tool.run(obj, actor=actor, reason=reason, data=data)
            except DomainError as error:
                messages.error(request, self.refusal_message(obj, error))
            else:
                messages.success(request, sentence)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{tool.label.rstrip('…')}: {obj}",
            "record": obj,
            "tool": tool,
            "form": form,
            "preflight": preflight,
            "shown_signed": decisions.signed([shown], where),
            "stale": stale,
            "opts": self.opts,
            "back_url": back,
        }
        return TemplateResponse(request, "admin/record_tool_confirm.html", context)
