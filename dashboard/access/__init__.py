"""Access control of the dashboard server: who is asking (login, kiosk, local mode), what each route
and each Dash callback needs, and one check before every request that enforces it (`guard.install`).

Pages declare the role of each callback next to it (`callback_role`) and their own `ROLE`; routes
declare theirs with `pipeline.web.access.requires`. The pages only hide or disable what a role cannot
use: the server is what refuses.
"""

from dashboard.access.callbacks import callback_role
from dashboard.access.identity import acting_name, current_identity, current_role
from pipeline.auth.roles import Role

__all__ = ["Role", "acting_name", "callback_role", "current_identity", "current_role"]
