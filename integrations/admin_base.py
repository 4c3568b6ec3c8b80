"""What the integrations' admin pages share. Visits, pharmacy orders, logs and inbox events are
written by the integration only: staff look at them and act through the admin actions, which
call the services; nobody adds, edits or deletes a row by hand."""


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
