"""``activity.list``: a workspace's activity log, newest first, for every member."""

from __future__ import annotations

from sqlalchemy import select

from handlers.context import Context
from handlers.pagination import cursor_int, decode_cursor, encode_cursor
from handlers.registry import Registry
from handlers.workspaces import access
from handlers.workspaces.cache import cache_for, params_digest
from handlers.workspaces.models import Activity
from handlers.workspaces.views import activity_public
from hubbub.contracts.api import activity as api
from hubbub.contracts.api.activity import ActivityListParams, ActivityPage

registry = Registry()
CURSOR_SCOPE = "activity"


@registry.handler(api.list_activity)
async def list_activity(ctx: Context, params: ActivityListParams) -> ActivityPage:
    await access.require(ctx, params.workspace_id, access.READ)
    cache = cache_for(ctx, params.workspace_id)
    first_page = params.cursor is None
    name = ("activity", params_digest(params))
    if first_page and (cached := await cache.get(ActivityPage, *name)) is not None:
        return cached
    statement = select(Activity).where(Activity.workspace_id == params.workspace_id)
    if params.subject_id is not None:
        statement = statement.where(Activity.subject_id == params.subject_id)
    if params.actor_id is not None:
        statement = statement.where(Activity.actor_id == params.actor_id)
    if params.cursor:
        (last_id,) = decode_cursor(params.cursor, CURSOR_SCOPE, 1)
        statement = statement.where(Activity.id < cursor_int(last_id))
    rows = (
        await ctx.session.scalars(statement.order_by(Activity.id.desc()).limit(params.limit + 1))
    ).all()
    items = [activity_public(row) for row in rows[: params.limit]]
    page = ActivityPage(
        items=items,
        next_cursor=encode_cursor(CURSOR_SCOPE, items[-1].id)
        if len(rows) > params.limit and items
        else None,
    )
    if first_page:
        await cache.put(page, *name)
    return page
