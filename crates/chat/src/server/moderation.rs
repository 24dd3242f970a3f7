//! A member's moderation requests: room operators' `kick`, `ban`, `unban`,
//! `mute`, `unmute`, `op`, `deop` and `bans`, and server admins' account
//! actions (`disable`, `enable`, `delete`). The rooms apply an action and
//! announce it under their lock (rooms.rs); bans and mutes are then written
//! to the account database, so they outlive the room and the server.

use tracing::{info, warn};

use super::auth::AuthError;
use super::requests::error;
use super::rooms::{Moderated, Moderator, RoomName};
use super::session::Member;
use crate::bus::wire::Event;
use crate::frame::{Action, BanEntry, ErrorCode, LeaveReason, ServerFrame};
use crate::name::Username;
use crate::store::{Sanction, SanctionKind, unix_now};

/// The longest reason given with a kick, ban or mute, in bytes.
pub const MAX_REASON: usize = 300;

/// Bans per `bans` frame: with 300-byte reasons, 100 stay below the limit.
const BANS_PER_FRAME: usize = 100;

impl Member<'_> {
    pub(super) fn moderator(&self) -> Moderator<'_> {
        Moderator {
            id: self.id,
            name: self.name.as_str(),
            admin: self.admin,
        }
    }

    /// A room action on account `user`.
    pub(super) async fn moderate(
        &self,
        action: Action,
        room: &str,
        user: &str,
        reason: Option<String>,
    ) {
        let Some(room) = self.room(room) else { return };
        if room.is_default() {
            let text = "the default room has no operators";
            self.reply(&error(ErrorCode::InvalidRoom, text));
            return;
        }
        if reason
            .as_ref()
            .is_some_and(|reason| reason.len() > MAX_REASON)
        {
            let text = format!("a reason has at most {MAX_REASON} bytes");
            self.reply(&error(ErrorCode::InvalidText, text));
            return;
        }
        let Some(target) = self.target(user) else {
            return;
        };
        // A ban or mute names an account, which must exist; kick, op and
        // deop name a member, unban and unmute a sanction.
        let target = if matches!(action, Action::Ban | Action::Mute) {
            let Some(stored) = self.account(target).await else {
                return;
            };
            stored
        } else {
            target.to_string()
        };
        let done =
            self.shared
                .rooms
                .moderate(&room, self.moderator(), action, &target, reason.clone());
        let Moderated {
            room: shown,
            announcement,
            told,
        } = match done {
            Ok(done) => done,
            Err((code, text)) => {
                self.reply(&error(code, text));
                return;
            }
        };
        info!(%action, room = %shown, user = %target, by = %self.name, reason = reason.as_deref().unwrap_or(""), "moderation");
        if !told {
            self.reply(&announcement);
        }
        let sanction = Sanction {
            kind: SanctionKind::Ban,
            room: shown,
            account: target,
            moderator: self.name.to_string(),
            reason,
            time: unix_now(),
        };
        let saved = match action {
            Action::Ban | Action::Mute => {
                let kind = if action == Action::Ban {
                    SanctionKind::Ban
                } else {
                    SanctionKind::Mute
                };
                let sanction = Sanction { kind, ..sanction };
                let (room, account) = (sanction.room.clone(), sanction.account.clone());
                let saved = self
                    .shared
                    .auth
                    .accounts(move |accounts| accounts.add_sanction(&sanction))
                    .await;
                if saved.is_ok() && kind == SanctionKind::Ban {
                    self.shared.rooms.ban_stored(&room, &account);
                }
                saved
            }
            Action::Unban | Action::Unmute => {
                let kind = if action == Action::Unban {
                    SanctionKind::Ban
                } else {
                    SanctionKind::Mute
                };
                self.shared
                    .auth
                    .accounts(move |accounts| {
                        accounts
                            .remove_sanction(kind, &sanction.room, &sanction.account)
                            .map(drop)
                    })
                    .await
            }
            _ => Ok(()),
        };
        if let Err(err) = saved {
            warn!(%action, "moderation applied but not saved: lost at restart");
            let (code, why) = database_error(&err);
            let text = format!("done, but {why}: it lasts until the server restarts");
            self.reply(&error(code, text));
        }
    }

    /// Lists the bans of `room` (its operators) or of every room (admins).
    pub(super) async fn bans(&self, room: Option<String>) {
        let room = match room {
            None if !self.admin => {
                let text = "only admins list every ban; name a room you operate";
                self.reply(&error(ErrorCode::NotAdmin, text));
                return;
            }
            None => None,
            Some(room) => {
                let Some(room) = self.room(&room) else { return };
                if let Err((code, text)) =
                    self.shared.rooms.check_moderator(&room, self.moderator())
                {
                    self.reply(&error(code, text));
                    return;
                }
                Some(room)
            }
        };
        let listed = self
            .shared
            .auth
            .accounts(move |accounts| {
                accounts.sanctions(SanctionKind::Ban, room.as_ref().map(RoomName::as_str))
            })
            .await;
        let bans = match listed {
            Ok(bans) => bans,
            Err(err) => {
                let (code, why) = database_error(&err);
                self.reply(&error(code, why));
                return;
            }
        };
        let bans: Vec<BanEntry> = bans
            .into_iter()
            .map(|ban| BanEntry {
                room: ban.room,
                user: ban.account,
                by: ban.moderator,
                time: ban.time,
                reason: ban.reason,
            })
            .collect();
        let pages: Vec<&[BanEntry]> = bans.chunks(BANS_PER_FRAME).collect();
        if pages.is_empty() {
            self.reply(&ServerFrame::Bans {
                bans: Vec::new(),
                more: false,
            });
        }
        let last = pages.len().saturating_sub(1);
        for (i, page) in pages.into_iter().enumerate() {
            self.reply(&ServerFrame::Bans {
                bans: page.to_vec(),
                more: i < last,
            });
        }
    }

    /// An admin's account action: `disable` and `delete` also end the
    /// account's sessions.
    pub(super) async fn account_action(&self, action: Action, user: &str) {
        if !self.admin {
            let text = format!("only server admins may {action} accounts");
            self.reply(&error(ErrorCode::NotAdmin, text));
            return;
        }
        let Some(target) = self.target(user) else {
            return;
        };
        let name = target.to_string();
        let done = self
            .shared
            .auth
            .accounts(move |accounts| {
                let Some((stored, _)) = accounts.standing(&name)? else {
                    return Ok(None);
                };
                match action {
                    Action::Disable => accounts.set_disabled(&stored, true)?,
                    Action::Enable => accounts.set_disabled(&stored, false)?,
                    _ => accounts.delete(&stored)?,
                };
                Ok(Some(stored))
            })
            .await;
        let stored = match done {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                self.reply(&error(
                    ErrorCode::NoSuchUser,
                    format!("no account {target}"),
                ));
                return;
            }
            Err(err) => {
                let (code, why) = database_error(&err);
                self.reply(&error(code, why));
                return;
            }
        };
        info!(%action, user = %stored, by = %self.name, "account moderation");
        let ending = match action {
            Action::Disable => Some((ErrorCode::AccountDisabled, "disabled")),
            Action::Delete => {
                self.shared.rooms.forget(&stored);
                Some((ErrorCode::AccountDeleted, "deleted"))
            }
            _ => None,
        };
        // Answered first: an admin acting on its own account still hears.
        self.reply(&ServerFrame::Moderation {
            action,
            user: stored.clone(),
            by: self.name.to_string(),
            room: None,
            reason: None,
        });
        if let Some((code, done)) = ending {
            let text = format!("your account was {done} by {}", self.name);
            for session in self.shared.room.sessions(&stored) {
                if let Some(kick) = session.kick {
                    kick.fire(code, LeaveReason::Kicked, text.clone());
                }
            }
            self.shared.room.tell(|| Event::Ended {
                account: stored,
                code,
                text,
                deleted: action == Action::Delete,
            });
        }
    }

    /// Whether the database still bans this session's account from
    /// `room`, for a join the rooms refused: a ban lifted there (with
    /// `netkit chat admin unban`) is forgotten, so the join may go on.
    pub(super) async fn still_banned(&self, room: &RoomName) -> bool {
        let (shown, account) = (room.as_str().to_owned(), self.name.to_string());
        let found = self
            .shared
            .auth
            .accounts(move |accounts| {
                let bans = accounts.sanctions(SanctionKind::Ban, Some(&shown))?;
                Ok(bans
                    .iter()
                    .any(|ban| ban.account.eq_ignore_ascii_case(&account)))
            })
            .await;
        match found {
            Ok(false) => {
                info!(room = %room.key(), user = %self.name, "ban lifted in the database");
                self.shared
                    .rooms
                    .ban_lifted(room.as_str(), self.name.as_str());
                false
            }
            // A database that cannot tell keeps the ban.
            Ok(true) | Err(_) => true,
        }
    }

    /// A target's name, if it could be an account's.
    fn target(&self, user: &str) -> Option<Username> {
        match Username::parse(user) {
            Ok(name) => Some(name),
            Err(err) => {
                self.reply(&error(ErrorCode::InvalidName, err.to_string()));
                None
            }
        }
    }

    /// The stored spelling of an existing account, or an answer saying why
    /// there is none.
    async fn account(&self, name: Username) -> Option<String> {
        let wanted = name.to_string();
        match self
            .shared
            .auth
            .accounts(move |accounts| accounts.standing(&wanted))
            .await
        {
            Ok(Some((stored, _))) => Some(stored),
            Ok(None) => {
                self.reply(&error(ErrorCode::NoSuchUser, format!("no account {name}")));
                None
            }
            Err(err) => {
                let (code, why) = database_error(&err);
                self.reply(&error(code, why));
                None
            }
        }
    }
}

/// What a member is told when the account database failed a request:
/// `unavailable` while it cannot be reached (try again later), else
/// `internal`.
fn database_error(err: &AuthError) -> (ErrorCode, &'static str) {
    match err {
        AuthError::Unavailable => (ErrorCode::Unavailable, "the database is unavailable"),
        _ => (ErrorCode::Internal, "the database failed"),
    }
}
