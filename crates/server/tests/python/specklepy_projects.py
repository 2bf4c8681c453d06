"""Drives specklepy's project, model, version and user calls against a running Tessera.

Inputs (environment): TESSERA_HOST, TESSERA_TOKEN (all stream scopes), TESSERA_SECOND_TOKEN (a
second user's), TESSERA_SECOND_ID, TESSERA_SECOND_EMAIL, TESSERA_READ_ONLY_TOKEN (streams:read).
Exits non-zero with a message on the first broken promise.
"""

import os
import sys

from specklepy.api.client import SpeckleClient
from specklepy.api.enums import ProjectVisibility
from specklepy.api.inputs.model_inputs import CreateModelInput, DeleteModelInput, UpdateModelInput
from specklepy.api.inputs.project_inputs import (
    ProjectCreateInput,
    ProjectInviteCreateInput,
    ProjectInviteUseInput,
    ProjectModelsFilter,
    ProjectUpdateInput,
    ProjectUpdateRoleInput,
)
from specklepy.api.inputs.user_inputs import UserProjectsFilter
from specklepy.api.inputs.version_inputs import CreateVersionInput
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


client = client_for(os.environ["TESSERA_TOKEN"])
second = client_for(os.environ["TESSERA_SECOND_TOKEN"])
second_id = os.environ["TESSERA_SECOND_ID"]

# Projects.
before = client.active_user.get_projects().total_count
private = client.project.create(
    ProjectCreateInput(name="My secret project", description="Top secret", visibility=ProjectVisibility.PRIVATE)
)
check(private.name == "My secret project" and private.description == "Top secret", "create private")
check(private.visibility == ProjectVisibility.PRIVATE, f"visibility {private.visibility}")
check(private.role == "stream:owner", f"role {private.role}")
unlisted = client.project.create(ProjectCreateInput(name="Unlisted", description=None, visibility=ProjectVisibility.UNLISTED))
check(unlisted.visibility == ProjectVisibility.PUBLIC, "UNLISTED reads back as PUBLIC")
check(unlisted.description == "", "a null description comes back as an empty string")
public = client.project.create(ProjectCreateInput(name="Public one", description=None, visibility=ProjectVisibility.PUBLIC))
got = client.project.get(private.id)
check((got.id, got.name, got.description, got.visibility, got.created_at) ==
      (private.id, private.name, private.description, private.visibility, private.created_at), "project.get")
projects = client.active_user.get_projects()
check(projects.total_count == before + 3, f"totalCount {projects.total_count}")
ids = [p.id for p in projects.items]
check(private.id in ids and public.id in ids, "listed")
found = client.active_user.get_projects(filter=UserProjectsFilter(search="Public one"))
check(found.total_count == 1 and found.items[0].id == public.id, "search filter")
check(client.active_user.can_create_personal_projects().authorized is True, "can create personal projects")

updated = client.project.update(ProjectUpdateInput(id=private.id, name="Renamed", description="New", visibility=ProjectVisibility.UNLISTED))
check(updated.name == "Renamed" and updated.description == "New", "update")
check(updated.visibility == ProjectVisibility.PUBLIC, "UNLISTED update reads back as PUBLIC")

# Permissions: the owner may, a stranger may not (even on a public project).
for project in (private, public):
    perms = client.project.get_permissions(project.id)
    check(perms.can_create_model.authorized and perms.can_delete.authorized and perms.can_load.authorized, "owner permissions")
stranger = second.project.get_permissions(public.id)
check(not stranger.can_create_model.authorized and not stranger.can_delete.authorized and not stranger.can_load.authorized,
      "a stranger has no permissions on a public project")
check(stranger.can_load.code and stranger.can_load.message, "a denial says why")

# Team.
team = client.project.get_with_team(public.id)
check(len(team.team) == 1 and team.team[0].role == "stream:owner", "team")
check(team.invited_team == [], "no invitations")
try:
    client.project.update_role(ProjectUpdateRoleInput(user_id=second_id, project_id=public.id, role="stream:contributor"))
    check(False, "updateRole gives no role to someone who is not a collaborator yet")
except (GraphQLException, SpeckleException) as e:
    check("invite the user" in str(e), f"updateRole points at invitations: {e}")
# Sharing is an invitation that the other user accepts.
invited = client.project_invite.create(public.id, ProjectInviteCreateInput(email=None, role="stream:contributor", server_role=None, userId=second_id))
check(len(invited.invited_team) == 1, "the invitation is pending")
mine = [i for i in second.active_user.get_project_invites() if i.projectId == public.id]
check(len(mine) == 1 and mine[0].token, "the invitee sees it, with its token")
check(second.project_invite.use(ProjectInviteUseInput(accept=True, project_id=public.id, token=mine[0].token)), "accepted")
team = client.project.get_with_team(public.id)
check({c.user.id: c.role for c in team.team}.get(second_id) == "stream:contributor", "shared with the second user")
check(second.project.get_permissions(public.id).can_create_model.authorized, "a contributor may create models")

# Models.
model = client.model.create(CreateModelInput(name="my/nested/model", description="A model", project_id=public.id))
check(model.name.lower() == "my/nested/model" and model.display_name == "model", "model create")
check(client.model.get(model.id, public.id).id == model.id, "model get")
other = client.model.create(CreateModelInput(name="other model", project_id=public.id))
models = client.model.get_models(public.id)
check(models.total_count == 2, f"models {models.total_count}")
filtered = client.model.get_models(public.id, models_filter=ProjectModelsFilter(search="nested"))
check(filtered.total_count == 1 and filtered.items[0].id == model.id, "model search")
with_models = client.project.get_with_models(public.id)
check(with_models.models.total_count == 2, "project.get_with_models")
renamed = client.model.update(UpdateModelInput(id=other.id, name="renamed model", project_id=public.id))
check(renamed.name == "renamed model" and renamed.updated_at >= other.updated_at, "model update")
mperms = client.model.get_permissions(public.id, model.id)
check(mperms.can_update.authorized and mperms.can_delete.authorized and mperms.can_create_version.authorized, "model permissions")

# Versions.
version = client.version.create(CreateVersionInput(object_id="0123456789abcdef0123456789abcdef", model_id=model.id, project_id=public.id, message="first"))
check(version.referenced_object == "0123456789abcdef0123456789abcdef" and version.message == "first", "version create")
check(version.preview_url and version.author_user.id, "version preview url and author")
check(client.version.get(version.id, public.id).id == version.id, "version get")
versions = client.version.get_versions(model.id, public.id)
check(versions.total_count == 1 and versions.items[0].id == version.id, "get_versions")

# Other users.
other_user = client.other_user.get(second_id)
check(other_user is not None and other_user.id == second_id, "other_user.get")
check(client.other_user.get("AnIdThatDoesntExist") is None, "unknown user is None")
hits = client.other_user.user_search(os.environ["TESSERA_SECOND_EMAIL"])
check(len(hits.items) == 1 and hits.items[0].id == second_id, "user_search by email")
check(len(client.other_user.user_search("idontexist@example.com").items) == 0, "no match")

# Deleting.
check(client.model.delete(DeleteModelInput(id=other.id, project_id=public.id)) is True, "model delete")
try:
    client.model.get(other.id, public.id)
    check(False, "a deleted model is gone")
except GraphQLException:
    pass
check(client.project.delete(unlisted.id) is True, "project delete")
try:
    client.project.get(unlisted.id)
    check(False, "a deleted project is gone")
except GraphQLException:
    pass

# A token that may only read cannot create.
reader = client_for(os.environ["TESSERA_READ_ONLY_TOKEN"])
try:
    reader.project.create(ProjectCreateInput(name="nope", description=None, visibility=None))
    check(False, "a streams:read token created a project")
except GraphQLException as e:
    check("streams:write" in str(e), f"the error names the missing scope: {e}")

print("specklepy projects: all checks passed")
