"""Who may do what through the API: logged-in users read (and use the model API), staff start and cancel work."""

from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated


class IsStaff(BasePermission):
    """A logged-in staff user (Django's is_staff)."""

    message = "Only staff users may start or cancel training."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class ReadAuthenticatedWriteStaff(BasePermission):
    """GET/HEAD/OPTIONS: any logged-in user; other methods: staff only."""

    message = "Only staff users may start or cancel training."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or bool(user.is_staff)


__all__ = ["IsAuthenticated", "IsStaff", "ReadAuthenticatedWriteStaff"]
