//! A room's members and bans, and the mutations that change them.
use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    guard::{SignedIn, viewer},
    pagination::cursor,
    parse_id,
    room::Room,
    state,
    user::User,
};
use crate::{
    domain::Note,
    entity::{membership, room_ban},
    error::{AppError, AppResult},
    service::chat::MAX_ADDED,
};

/// A member's standing in a room. Each role may do what the ones below it may.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::entity::membership::RoomRole")]
pub enum RoomRole {
    /// Changes roles (making someone OWNER hands the room over) and deletes the room. One
    /// per room.
    Owner,
    /// Adds members, removes and bans those below, renames the room and sets its topic.
    Admin,
    /// Reads, sends and subscribes.
    Member,
}

pub struct RoomMember(pub membership::Model);

#[Object]
impl RoomMember {
    async fn user(&self, ctx: &Context<'_>) -> AppResult<User> {
        user(ctx, self.0.user_id).await
    }

    async fn role(&self) -> RoomRole {
        self.0.role.into()
    }

    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

cursor!(MemberCursor(Uuid), "member");

pub fn member_edge(row: membership::Model) -> (MemberCursor, RoomMember) {
    (MemberCursor(row.user_id), RoomMember(row))
}

pub struct RoomBan(pub room_ban::Model);

#[Object]
impl RoomBan {
    async fn user(&self, ctx: &Context<'_>) -> AppResult<User> {
        user(ctx, self.0.user_id).await
    }

    /// Null once that user's account is gone.
    async fn banned_by(&self, ctx: &Context<'_>) -> AppResult<Option<User>> {
        match self.0.banned_by {
            Some(id) => Ok(Some(user(ctx, id).await?)),
            None => Ok(None),
        }
    }

    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    async fn banned_at(&self) -> DateTime<Utc> {
        self.0.banned_at
    }
}

cursor!(BanCursor(Uuid), "ban");

pub fn ban_edge(row: room_ban::Model) -> (BanCursor, RoomBan) {
    (BanCursor(row.user_id), RoomBan(row))
}

pub(super) async fn user(ctx: &Context<'_>, id: Uuid) -> AppResult<User> {
    let row = state(ctx)?.users.get(id).await?;
    let row = row.ok_or_else(|| anyhow::anyhow!("user {id} of a membership is missing"))?;
    Ok(User::new(row))
}

#[derive(Default)]
pub struct MemberMutation;

#[Object]
impl MemberMutation {
    /// Adds users to a room as MEMBERs (OWNER and ADMIN; at most 100 at a time): the way
    /// into a private room. Those already in it keep their role; banned users cannot be
    /// added until unbanned.
    #[graphql(guard = "SignedIn")]
    async fn add_members(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_ids: Vec<ID>,
    ) -> AppResult<Room> {
        if user_ids.len() > MAX_ADDED {
            return Err(AppError::bad_input(
                "userIds",
                format!("at most {MAX_ADDED} users at a time"),
            ));
        }
        let room_id = parse_id("roomId", &room_id)?;
        let user_ids = user_ids
            .iter()
            .map(|id| parse_id("userIds", id))
            .collect::<AppResult<Vec<_>>>()?;
        let chat = &state(ctx)?.chat;
        Ok(Room(
            chat.add_members(viewer(ctx)?, room_id, &user_ids).await?,
        ))
    }

    /// Removes a member of a lower role (OWNER and ADMIN); their subscriptions to the room end
    /// with FORBIDDEN. False if they were not a member. To leave, `leaveRoom`.
    #[graphql(guard = "SignedIn")]
    async fn remove_member(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> AppResult<bool> {
        let (room_id, user_id) = (parse_id("roomId", &room_id)?, parse_id("userId", &user_id)?);
        let chat = &state(ctx)?.chat;
        chat.remove_member(viewer(ctx)?, room_id, user_id).await
    }

    /// Bans a user from a room (OWNER and ADMIN, over lower roles), removing them if they are
    /// a member: they cannot join or be added until unbanned. `reason`: at most 500
    /// characters, seen by the room's OWNER and ADMINs. False if already banned (the reason is
    /// updated).
    #[graphql(guard = "SignedIn")]
    async fn ban_member(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
        reason: Option<String>,
    ) -> AppResult<bool> {
        let (room_id, user_id) = (parse_id("roomId", &room_id)?, parse_id("userId", &user_id)?);
        let reason = match reason {
            Some(reason) => Note::parse("reason", &reason)?,
            None => None,
        };
        let chat = &state(ctx)?.chat;
        chat.ban_member(viewer(ctx)?, room_id, user_id, reason)
            .await
    }

    /// Lifts a ban (OWNER and ADMIN). False if there was none.
    #[graphql(guard = "SignedIn")]
    async fn unban_member(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> AppResult<bool> {
        let (room_id, user_id) = (parse_id("roomId", &room_id)?, parse_id("userId", &user_id)?);
        let chat = &state(ctx)?.chat;
        chat.unban_member(viewer(ctx)?, room_id, user_id).await
    }

    /// Sets a member's role (OWNER). Making someone OWNER hands the room over: the previous
    /// owner becomes an ADMIN.
    #[graphql(guard = "SignedIn")]
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
        role: RoomRole,
    ) -> AppResult<RoomMember> {
        let (room_id, user_id) = (parse_id("roomId", &room_id)?, parse_id("userId", &user_id)?);
        let chat = &state(ctx)?.chat;
        let member = chat
            .set_member_role(viewer(ctx)?, room_id, user_id, role.into())
            .await?;
        Ok(RoomMember(member))
    }
}
