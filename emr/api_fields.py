from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no "12", no 12.5, no true. Money and quantities use it."""

    default_error_messages = {
        "invalid": "Must be a whole number (an integer, not text or a decimal)."
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
