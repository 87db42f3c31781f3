//! A room's members: adding them (the way into a private room), removing and banning them,
//! ranking them, and listing them and the bans.
use std::collections::BTreeSet;

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait, Order,
    PaginatorTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Query, QueryStatementBuilder},
};
use uuid::Uuid;

use super::{
    Chat,
    access::{Action, outranks, room_access},
    events::Change,
    rooms::{add_member, end_membership},
};
use crate::{
    broker::Event,
    domain::Note,
    entity::{
        membership::{self, RoomRole},
        now, room, room_ban,
        room_event::LeaveReason,
        user,
    },
    error::{AppError, AppResult},
    service::{Window, after_id, auth::Viewer},
};

/// Users added at once, at most: what one `addMembers` may ask for.
pub const MAX_ADDED: usize = 100;

pub type RoomMember = membership::Model;

impl Chat {
    /// Adds users to a room as MEMBERs (OWNER and ADMIN): the way into a private room. Those
    /// already in it keep their role. No banned user is added, and no unknown one.
    pub async fn add_members(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        user_ids: &[Uuid],
    ) -> AppResult<room::Model> {
        if user_ids.len() > MAX_ADDED {
            return Err(AppError::bad_input(
                "userIds",
                format!("at most {MAX_ADDED} users at a time"),
            ));
        }
        let wanted: BTreeSet<Uuid> = user_ids.iter().copied().collect();
        let (txn, access) = self
            .begin_on(room_id, viewer.user_id, Action::Moderate)
            .await?;
        let found = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.is_in(wanted.iter().copied()))
            .filter(user::Column::DeletedAt.is_null())
            .into_tuple::<Uuid>()
            .all(&txn)
            .await?;
        if let Some(unknown) = wanted.iter().find(|&&id| !<[Uuid]>::contains(&found, &id)) {
            return Err(AppError::bad_input(
                "userIds",
                format!("no user with id {unknown}"),
            ));
        }
        let banned = room_ban::Entity::find()
            .filter(room_ban::Column::RoomId.eq(room_id))
            .filter(room_ban::Column::UserId.is_in(wanted.iter().copied()))
            .count(&txn)
            .await?;
        if banned > 0 {
            return Err(AppError::Forbidden(
                "banned users cannot be added until they are unbanned",
            ));
        }
        let mut events = Vec::new();
        for &user_id in &wanted {
            let by = Some(viewer.user_id);
            events.extend(add_member(&txn, &access.room, user_id, RoomRole::Member, by).await?);
        }
        self.commit(txn, events).await?;
        Ok(access.room)
    }

    /// Removes a member of a lower role (OWNER and ADMIN); their subscriptions to the room end
    /// with FORBIDDEN, on every instance. False if they were not a member.
    pub async fn remove_member(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<bool> {
        not_yourself(viewer, user_id)?;
        let actor = viewer.user_id;
        let (txn, access) = self.begin_on(room_id, actor, Action::Moderate).await?;
        let Some(target) = role_of(&txn, room_id, user_id).await? else {
            return Ok(false);
        };
        outranks(access.role, Some(target))?;
        let reason = LeaveReason::Removed;
        let events = end_membership(&txn, room_id, user_id, reason, Some(actor)).await?;
        self.commit(txn, events).await?;
        Ok(true)
    }

    /// Bans a user from a room (OWNER and ADMIN, over lower roles), removing them if they are
    /// a member: they cannot join or be added until unbanned. Banning again updates the
    /// reason. False if they were banned already.
    pub async fn ban_member(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        user_id: Uuid,
        reason: Option<Note>,
    ) -> AppResult<bool> {
        not_yourself(viewer, user_id)?;
        let actor = viewer.user_id;
        let (txn, access) = self.begin_on(room_id, actor, Action::Moderate).await?;
        let user = self.users.get(user_id).await?;
        if user.is_none_or(|user| user.deleted_at.is_some()) {
            return Err(AppError::NotFound("user"));
        }
        let target = role_of(&txn, room_id, user_id).await?;
        outranks(access.role, target)?;
        let existing = room_ban::Entity::find_by_id((room_id, user_id))
            .one(&txn)
            .await?;
        let reason = reason.map(Note::into_inner);
        let newly = existing.is_none();
        match existing {
            Some(ban) => {
                let mut ban: room_ban::ActiveModel = ban.into();
                ban.reason = Set(reason);
                ban.update(&txn).await?;
            }
            None => {
                room_ban::ActiveModel {
                    room_id: Set(room_id),
                    user_id: Set(user_id),
                    banned_by: Set(Some(actor)),
                    reason: Set(reason),
                    banned_at: Set(now()),
                }
                .insert(&txn)
                .await?;
            }
        }
        let reason = LeaveReason::Banned;
        let events = end_membership(&txn, room_id, user_id, reason, Some(actor)).await?;
        self.commit(txn, events).await?;
        Ok(newly)
    }

    /// Lifts a ban (OWNER and ADMIN). False if there was none.
    pub async fn unban_member(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<bool> {
        let (txn, _) = self
            .begin_on(room_id, viewer.user_id, Action::Moderate)
            .await?;
        let lifted = room_ban::Entity::delete_by_id((room_id, user_id))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        txn.commit().await?;
        Ok(lifted)
    }

    /// Sets a member's role (OWNER). Making someone OWNER hands the room over: the owner
    /// becomes an ADMIN.
    pub async fn set_member_role(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        user_id: Uuid,
        role: RoomRole,
    ) -> AppResult<RoomMember> {
        if user_id == viewer.user_id {
            return Err(AppError::bad_input(
                "userId",
                "an owner hands the room over by making another member OWNER",
            ));
        }
        let (txn, _) = self.begin_on(room_id, viewer.user_id, Action::Own).await?;
        let member = membership::Entity::find_by_id((room_id, user_id))
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::bad_input("userId", "not a member of this room"))?;
        if member.role == role {
            txn.commit().await?;
            return Ok(member);
        }
        let by = Some(viewer.user_id);
        let mut events = Vec::new();
        if role == RoomRole::Owner {
            set_role(&txn, room_id, viewer.user_id, RoomRole::Admin).await?;
            let change = Change::role_changed(room_id, viewer.user_id, RoomRole::Admin, None);
            events.push(change.record(&txn).await?);
        }
        let mut member: membership::ActiveModel = member.into();
        member.role = Set(role);
        let member = member.update(&txn).await?;
        events.push(
            Change::role_changed(room_id, user_id, role, by)
                .record(&txn)
                .await?,
        );
        self.commit(txn, events).await?;
        Ok(member)
    }

    /// A page of a room's members, in sign-up order (members only).
    pub async fn members(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Window<RoomMember>> {
        Action::Take.check(&room_access(&self.db, room_id, viewer.user_id).await?)?;
        let query = membership::Entity::find().filter(membership::Column::RoomId.eq(room_id));
        after_id(&self.db, query, membership::Column::UserId, after, limit).await
    }

    /// A page of a room's bans, in the banned users' sign-up order (OWNER and ADMIN).
    pub async fn bans(
        &self,
        viewer: &Viewer,
        room_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Window<room_ban::Model>> {
        Action::Moderate.check(&room_access(&self.db, room_id, viewer.user_id).await?)?;
        let query = room_ban::Entity::find().filter(room_ban::Column::RoomId.eq(room_id));
        after_id(&self.db, query, room_ban::Column::UserId, after, limit).await
    }
}

/// Removing or banning is for others; leaving is `leaveRoom`.
fn not_yourself(viewer: &Viewer, user_id: Uuid) -> AppResult<()> {
    if user_id == viewer.user_id {
        return Err(AppError::bad_input(
            "userId",
            "use leaveRoom to leave a room",
        ));
    }
    Ok(())
}

async fn role_of(
    db: &impl ConnectionTrait,
    room_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<RoomRole>> {
    Ok(membership::Entity::find_by_id((room_id, user_id))
        .one(db)
        .await?
        .map(|m| m.role))
}

async fn set_role(
    db: &impl ConnectionTrait,
    room_id: Uuid,
    user_id: Uuid,
    role: RoomRole,
) -> AppResult<()> {
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .filter(membership::Column::RoomId.eq(room_id))
        .filter(membership::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every membership of `user_id` (whose account is being deleted), handing over the
/// rooms they owned: the events to announce once `txn` commits.
pub(crate) async fn leave_all(txn: &DatabaseTransaction, user_id: Uuid) -> AppResult<Vec<Event>> {
    let rooms: Vec<Uuid> = membership::Entity::find()
        .select_only()
        .column(membership::Column::RoomId)
        .filter(membership::Column::UserId.eq(user_id))
        .into_tuple()
        .all(txn)
        .await?;
    let mut events = Vec::new();
    for room_id in rooms {
        events.extend(end_membership(txn, room_id, user_id, LeaveReason::Left, None).await?);
    }
    Ok(events)
}

/// Gives each of `rooms` left with members but no OWNER (its owner left or was removed) to its
/// longest-standing ADMIN, else its longest-standing MEMBER: the events to announce. Direct
/// rooms have no owner to give.
pub(super) async fn hand_over(db: &impl ConnectionTrait, rooms: &[Uuid]) -> AppResult<Vec<Event>> {
    let m = |column| (membership::Entity, column);
    let owner = Query::select()
        .expr(Expr::val(1))
        .from_as(membership::Entity, Alias::Owner)
        .and_where(
            Expr::col((Alias::Owner, membership::Column::RoomId))
                .equals(m(membership::Column::RoomId)),
        )
        .and_where(Expr::col((Alias::Owner, membership::Column::Role)).eq(RoomRole::Owner))
        .to_owned();
    let direct = Query::select()
        .expr(Expr::val(1))
        .from(room::Entity)
        .and_where(
            Expr::col((room::Entity, room::Column::Id)).equals(m(membership::Column::RoomId)),
        )
        .and_where(Expr::col((room::Entity, room::Column::IsDirect)).eq(true))
        .to_owned();
    let admins_first = Expr::case(
        Expr::col((Alias::Heir, membership::Column::Role)).eq(RoomRole::Admin),
        0,
    )
    .finally(1);
    let heir = Query::select()
        .column((Alias::Heir, membership::Column::UserId))
        .from_as(membership::Entity, Alias::Heir)
        .and_where(
            Expr::col((Alias::Heir, membership::Column::RoomId))
                .equals(m(membership::Column::RoomId)),
        )
        .order_by_expr(admins_first.into(), Order::Asc)
        .order_by((Alias::Heir, membership::Column::JoinedAt), Order::Asc)
        .order_by((Alias::Heir, membership::Column::UserId), Order::Asc)
        .limit(1)
        .to_owned();
    let heirs = membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(RoomRole::Owner))
        .filter(membership::Column::RoomId.is_in(rooms.iter().copied()))
        .filter(Expr::exists(owner).not())
        .filter(Expr::exists(direct).not())
        .filter(Expr::col(m(membership::Column::UserId)).eq(Expr::SubQuery(
            None,
            Box::new(heir.into_sub_query_statement()),
        )))
        .exec_with_returning(db)
        .await?;
    let mut events = Vec::new();
    for heir in heirs {
        let change = Change::role_changed(heir.room_id, heir.user_id, RoomRole::Owner, None);
        events.push(change.record(db).await?);
    }
    Ok(events)
}

#[derive(sea_orm::DeriveIden)]
enum Alias {
    Owner,
    Heir,
}
