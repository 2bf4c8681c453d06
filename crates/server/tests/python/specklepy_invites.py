"""Drives specklepy's invitation calls against a running Tessera: `client.project_invite`
(create, get, use, cancel; this specklepy has no batch_create, the API test covers batchCreate)
and `client.active_user.get_project_invites()`.

Inputs (environment): TESSERA_HOST, TESSERA_TOKEN (the inviting owner's, all scopes),
TESSERA_SECOND_TOKEN / TESSERA_SECOND_ID / TESSERA_SECOND_EMAIL (the invitee),
TESSERA_THIRD_ID (someone else). Exits non-zero with a message on the first broken promise.
"""

import os
import sys

from specklepy.api.client import SpeckleClient
from specklepy.api.enums import ProjectVisibility
from specklepy.api.inputs.project_inputs import (
    ProjectCreateInput,
    ProjectInviteCreateInput,
    ProjectInviteUseInput,
    ProjectUpdateRoleInput,
)
from specklepy.logging.exceptions import GraphQLException, SpeckleException

host = os.environ["TESSERA_HOST"]


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def client_for(token):
    c = SpeckleClient(host=host, use_ssl=False)
    c.authenticate_with_token(token)
    return c


owner = client_for(os.environ["TESSERA_TOKEN"])
invitee = client_for(os.environ["TESSERA_SECOND_TOKEN"])
invitee_id = os.environ["TESSERA_SECOND_ID"]
invitee_email = os.environ["TESSERA_SECOND_EMAIL"]
third_id = os.environ["TESSERA_THIRD_ID"]


def new_project(name):
    return owner.project.create(
        ProjectCreateInput(name=name, description=None, visibility=ProjectVisibility.PUBLIC)
    )


def pending_for(project_id):
    return [i for i in invitee.active_user.get_project_invites() if i.projectId == project_id]


# By email: the invitee sees it with its token; the owner sees it in the invited team.
project = new_project("by email")
shared = owner.project_invite.create(
    project.id, ProjectInviteCreateInput(email=invitee_email, role=None, server_role=None, userId=None)
)
check(shared.id == project.id and len(shared.invited_team) == 1, "create by email")
mine = pending_for(project.id)
check(len(mine) == 1, f"the invitee sees one invitation: {mine}")
check(mine[0].user is not None and mine[0].user.id == invitee_id, "it names the invitee")
check(mine[0].token, "the invitee gets the token")
check(mine[0].role == "stream:contributor", "contributor by default")

# get: by token, and None for a token that is not one.
found = invitee.project_invite.get(project.id, mine[0].token)
check(found is not None and found.invite_id == mine[0].invite_id, "get by token")
check(invitee.project_invite.get(project.id, "this is not a real token") is None, "get unknown")

# use: accepted, the invitee is on the team.
check(invitee.project_invite.use(ProjectInviteUseInput(accept=True, project_id=project.id, token=mine[0].token)) is True, "use")
team = owner.project.get_with_team(project.id)
check({c.user.id for c in team.team} == {owner.account.userInfo.id, invitee_id}, "the invitee joined")
check(invitee.project.get(project.id).role == "stream:contributor", "with the invited role")

# Roles of a collaborator can now change, down to none.
for role in ["stream:owner", "stream:reviewer", None]:
    owner.project.update_role(ProjectUpdateRoleInput(user_id=invitee_id, project_id=project.id, role=role))
    check(invitee.project.get(project.id).role == role, f"role {role}")

# By user id, then cancelled: nobody joins.
project = new_project("by id")
shared = owner.project_invite.create(
    project.id, ProjectInviteCreateInput(email=None, role="stream:reviewer", server_role=None, userId=invitee_id)
)
check(len(shared.invited_team) == 1 and shared.invited_team[0].user.id == invitee_id, "create by id")
invite = pending_for(project.id)[0]
after = owner.project_invite.cancel(project.id, invite.invite_id)
check(len(after.invited_team) == 0, "cancel")
check(pending_for(project.id) == [], "the invitee no longer sees it")
try:
    invitee.project_invite.use(ProjectInviteUseInput(accept=True, project_id=project.id, token=invite.token))
    check(False, "a cancelled invitation cannot be used")
except (GraphQLException, SpeckleException):
    pass

# Two invitations, and declining one.
project = new_project("two")
for user_id in [invitee_id, third_id]:
    shared = owner.project_invite.create(
        project.id, ProjectInviteCreateInput(email=None, role=None, server_role=None, userId=user_id)
    )
check(len(shared.invited_team) == 2, "two pending invitations")
invite = pending_for(project.id)[0]
check(invitee.project_invite.use(ProjectInviteUseInput(accept=False, project_id=project.id, token=invite.token)) is True, "decline")
team = owner.project.get_with_team(project.id)
check(invitee_id not in {c.user.id for c in team.team}, "declining gives no role")
check(len(team.invited_team) == 1, "the other invitation stays")

print("all checks passed")
