//! Who may do what in a room. `RoomAccess` is what one query learns of a room and a user;
//! `Action::check` is the one table of permissions (README.md, "Rooms and members", shows the
//! same table).
//!
//! Roles rank OWNER > ADMIN > MEMBER, and each may do what the ones below it may. A direct room
//! has two members and no roles beyond that: nothing about it can be changed.
use sea_orm::{
    Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait, FromQueryResult,
    QuerySelect, SelectModel, Selector,
    sea_query::{Expr, IntoColumnRef, Query, QueryStatementBuilder, SelectStatement},
};
use uuid::Uuid;

use crate::{
    entity::{
        membership::{self, RoomRole},
        room, room_ban,
    },
    error::{AppError, AppResult},
};

/// A room, and where one user stands in it.
#[derive(Debug, FromQueryResult)]
pub(super) struct RoomAccess {
    #[sea_orm(nested)]
    pub room: room::Model,
    /// The user's role; `None` if not a member.
    pub role: Option<RoomRole>,
    pub banned: bool,
    /// Whether anyone is a member: a room its last member left is seen by nobody.
    pub inhabited: bool,
}

/// What a user may try to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Its history, its settings, `room(id)`.
    Read,
    /// Send, subscribe, list the members.
    Take,
    Join,
    Leave,
    /// Add members, remove or ban those of a lower role, lift bans, see the bans.
    Moderate,
    /// Rename it, set its topic.
    Update,
    /// Change members' roles (making someone OWNER hands the room over), delete the room.
    Own,
}

impl Action {
    /// The table. FORBIDDEN says why not.
    pub fn check(self, access: &RoomAccess) -> AppResult<()> {
        use RoomRole::*;
        let room = &access.room;
        let role = access.role;
        let refused = match self {
            _ if !access.inhabited && role.is_none() => return Err(AppError::NotFound("room")),
            Action::Read if access.banned => Some("you are banned from this room"),
            Action::Read if role.is_some() || !room.is_private => None,
            Action::Read => Some("this room is private"),
            Action::Take if role.is_some() => None,
            Action::Take => Some("only members may do this in this room"),
            Action::Join if room.is_private => Some("private rooms are joined by invitation"),
            Action::Join if access.banned => Some("you are banned from this room"),
            Action::Join => None,
            Action::Leave if room.is_direct => Some("direct rooms cannot be left"),
            Action::Leave => None,
            _ if room.is_direct => Some("direct rooms cannot be changed"),
            Action::Moderate | Action::Update if role >= Some(Admin) => None,
            Action::Moderate | Action::Update => {
                Some("only the room's owner and admins may do this")
            }
            Action::Own if role == Some(Owner) => None,
            Action::Own => Some("only the room's owner may do this"),
        };
        match refused {
            Some(why) => Err(AppError::Forbidden(why)),
            None => Ok(()),
        }
    }
}

/// Whether someone of `actor`'s role may remove or ban someone of `target`'s (`None`: not a
/// member): only from below.
pub(super) fn outranks(actor: Option<RoomRole>, target: Option<RoomRole>) -> AppResult<()> {
    if actor > target {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only members of a lower role may be removed or banned",
        ))
    }
}

/// The room and where `user_id` stands in it, in one query: every room operation starts here,
/// and a burst of subscriptions must not cost a burst of round trips.
pub(super) async fn room_access(
    db: &impl ConnectionTrait,
    room_id: Uuid,
    user_id: Uuid,
) -> AppResult<RoomAccess> {
    query(room_id, user_id, false)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("room"))
}

/// The same inside a transaction that will change the room's membership or settings, with
/// the room's row locked until it ends (Postgres; a SQLite write transaction holds the
/// database's lock already): such changes to one room, and sends to it, go one at a time, each
/// checking permissions against what the one before left.
pub(super) async fn room_access_for_update(
    txn: &DatabaseTransaction,
    room_id: Uuid,
    user_id: Uuid,
) -> AppResult<RoomAccess> {
    query(room_id, user_id, true)
        .one(txn)
        .await?
        .ok_or(AppError::NotFound("room"))
}

/// The ids of the rooms `user_id` may read, as a subquery: `Action::Read` in SQL, for a query
/// over all of them at once (search), which a check per room would make a query per room.
/// Keep the two in step: not banned, and a member, or the room is public and someone is in it.
pub(super) fn readable_rooms(user_id: Uuid) -> SelectStatement {
    let members = |who: Option<Uuid>| {
        let mut members = Query::select();
        members
            .expr(Expr::val(1))
            .from(membership::Entity)
            .and_where(in_room((membership::Entity, membership::Column::RoomId)));
        if let Some(user_id) = who {
            members
                .and_where(Expr::col((membership::Entity, membership::Column::UserId)).eq(user_id));
        }
        members
    };
    let banned = Query::select()
        .expr(Expr::val(1))
        .from(room_ban::Entity)
        .and_where(in_room((room_ban::Entity, room_ban::Column::RoomId)))
        .and_where(Expr::col((room_ban::Entity, room_ban::Column::UserId)).eq(user_id))
        .to_owned();
    Query::select()
        .column((room::Entity, room::Column::Id))
        .from(room::Entity)
        .and_where(Expr::exists(banned).not())
        .cond_where(
            Condition::any()
                .add(Expr::exists(members(Some(user_id))))
                .add(
                    Condition::all()
                        .add(Expr::col((room::Entity, room::Column::IsPrivate)).eq(false))
                        .add(Expr::exists(members(None))),
                ),
        )
        .to_owned()
}

fn in_room(column: impl IntoColumnRef) -> Expr {
    Expr::col(column).equals((room::Entity, room::Column::Id))
}

fn query(room_id: Uuid, user_id: Uuid, lock: bool) -> Selector<SelectModel<RoomAccess>> {
    let role = Query::select()
        .column((membership::Entity, membership::Column::Role))
        .from(membership::Entity)
        .and_where(in_room((membership::Entity, membership::Column::RoomId)))
        .and_where(Expr::col((membership::Entity, membership::Column::UserId)).eq(user_id))
        .to_owned();
    let banned = Query::select()
        .expr(Expr::val(1))
        .from(room_ban::Entity)
        .and_where(in_room((room_ban::Entity, room_ban::Column::RoomId)))
        .and_where(Expr::col((room_ban::Entity, room_ban::Column::UserId)).eq(user_id))
        .to_owned();
    let anyone = Query::select()
        .expr(Expr::val(1))
        .from(membership::Entity)
        .and_where(in_room((membership::Entity, membership::Column::RoomId)))
        .to_owned();
    let mut select = room::Entity::find_by_id(room_id)
        .column_as(
            Expr::SubQuery(None, Box::new(role.into_sub_query_statement())),
            "role",
        )
        .column_as(Expr::exists(banned), "banned")
        .column_as(Expr::exists(anyone), "inhabited");
    if lock {
        select = select.lock_exclusive();
    }
    select.into_model::<RoomAccess>()
}
