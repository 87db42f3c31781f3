//! Chat inputs: room names, topics and other notes, message bodies, client message ids.
use super::{InvalidInput, check_length, reject_nul};

/// Checks that `s` is storable, not blank, and at most `max` characters long.
fn bounded(field: &'static str, what: &str, s: &str, max: usize) -> Result<(), InvalidInput> {
    reject_nul(field, s)?;
    if s.trim().is_empty() {
        return Err(InvalidInput::new(
            field,
            format!("{what} must not be blank"),
        ));
    }
    if s.chars().count() > max {
        return Err(InvalidInput::new(
            field,
            format!("{what} must be at most {max} characters long"),
        ));
    }
    Ok(())
}

/// 1–100 characters, stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX: usize = 100;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        bounded(field, "room name", s, Self::MAX)?;
        Ok(Self(s.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// 1–4000 characters, kept exactly as sent (leading spaces and newlines can be meaningful in
/// a message), but not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX: usize = 4000;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        bounded(field, "message body", s, Self::MAX)?;
        Ok(Self(s.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A client's idempotency key for a send: 1–100 characters, typically a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub const MAX: usize = 100;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        reject_nul(field, s)?;
        check_length(field, "clientMsgId", s, 1..=Self::MAX)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text beside a room: its topic, the reason for a ban. At most 500 characters, stored
/// trimmed; blank means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub const MAX: usize = 500;

    pub fn parse(field: &'static str, s: &str) -> Result<Option<Self>, InvalidInput> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        reject_nul(field, s)?;
        check_length(field, field, s, 1..=Self::MAX)?;
        Ok(Some(Self(s.to_owned())))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// What `searchMessages` looks for: 1–200 characters, not blank, trimmed. It is plain text,
/// words to find: no character of it is syntax (see `service::chat::search`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// Enough for any phrase worth looking for; a bound on what one search costs the database.
    pub const MAX: usize = 200;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        bounded(field, field, s, Self::MAX)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its words: the runs of letters and digits; anything else only separates them.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
    }
}

/// A reaction: one emoji as Unicode defines it (skin tones included), kept in its canonical
/// form, so that "❤" and "❤️" are the same reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emoji(&'static str);

impl Emoji {
    /// Longer than any emoji (the longest sequences are 35 bytes): refused without a lookup.
    pub const MAX_BYTES: usize = 64;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        let emoji = (s.len() <= Self::MAX_BYTES)
            .then(|| emojis::get(s))
            .flatten()
            .ok_or_else(|| InvalidInput::new(field, format!("{field} must be one emoji")))?;
        Ok(Self(emoji.as_str()))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// Users a message mentions, at most: later `@names` in the same body are plain text.
pub const MAX_MENTIONS: usize = 20;

/// The usernames a body mentions (`@name`, not inside a word), lowercased, each once, in order,
/// at most `MAX_MENTIONS`. Which of them are members is for the room to say.
pub fn mentioned_usernames(body: &str) -> Vec<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found: Vec<String> = Vec::new();
    let mut previous = None;
    for (i, c) in body.char_indices() {
        let starts = c == '@' && !previous.is_some_and(|p: char| word(p) || p == '@');
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &body[i + 1..];
        let len = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
        let name = rest[..len].to_ascii_lowercase();
        if (super::Username::MIN..=super::Username::MAX).contains(&len) && !found.contains(&name) {
            found.push(name);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_trimmed_and_bounded() {
        assert_eq!(
            RoomName::parse("name", "  general ").unwrap().into_inner(),
            "general"
        );
        assert!(RoomName::parse("name", &"r".repeat(100)).is_ok());
        assert!(RoomName::parse("name", &"r".repeat(101)).is_err());
        assert!(RoomName::parse("name", "   ").is_err());
        assert!(RoomName::parse("name", "").is_err());
    }

    #[test]
    fn bodies_are_kept_as_sent() {
        assert_eq!(
            MessageBody::parse("body", "  hi\n").unwrap().into_inner(),
            "  hi\n"
        );
        assert!(MessageBody::parse("body", &"😀".repeat(4000)).is_ok());
        assert!(MessageBody::parse("body", &"a".repeat(4001)).is_err());
        assert_eq!(
            MessageBody::parse("body", " \n\t").unwrap_err().field,
            "body"
        );
    }

    #[test]
    fn nul_characters_are_refused_everywhere() {
        // Postgres cannot store them; see `reject_nul`.
        assert_eq!(
            MessageBody::parse("body", "a\0b").unwrap_err().field,
            "body"
        );
        assert_eq!(RoomName::parse("name", "a\0b").unwrap_err().field, "name");
        assert!(ClientMsgId::parse("clientMsgId", "a\0b").is_err());
    }

    #[test]
    fn search_text_is_trimmed_bounded_and_not_blank() {
        let text = SearchText::parse("query", "  deploy friday ").unwrap();
        assert_eq!(text.as_str(), "deploy friday");
        let words = SearchText::parse("query", "\"NEAR(don't, 2)* été").unwrap();
        assert_eq!(
            words.words().collect::<Vec<_>>(),
            ["NEAR", "don", "t", "2", "été"]
        );
        assert_eq!(SearchText::parse("query", "*").unwrap().words().count(), 0);
        assert!(SearchText::parse("query", &"é".repeat(200)).is_ok());
        for refused in ["", " \n\t", "a\0b", &"a".repeat(201), &"a".repeat(200_000)] {
            assert_eq!(
                SearchText::parse("query", refused).unwrap_err().field,
                "query"
            );
        }
    }

    #[test]
    fn notes_are_trimmed_bounded_and_blank_means_none() {
        assert_eq!(
            Note::parse("topic", "  all things  ")
                .unwrap()
                .unwrap()
                .into_inner(),
            "all things"
        );
        assert_eq!(Note::parse("topic", " \n ").unwrap(), None);
        assert!(Note::parse("topic", &"é".repeat(500)).unwrap().is_some());
        let err = Note::parse("topic", &"é".repeat(501)).unwrap_err();
        assert_eq!(
            (err.field, err.message.as_str()),
            ("topic", "topic must be 1–500 characters long")
        );
        assert!(Note::parse("reason", "a\0b").is_err());
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(ClientMsgId::parse("clientMsgId", "a").is_ok());
        assert!(ClientMsgId::parse("clientMsgId", "").is_err());
        assert!(ClientMsgId::parse("clientMsgId", &"a".repeat(101)).is_err());
    }

    #[test]
    fn emoji_are_single_and_canonical() {
        assert_eq!(Emoji::parse("emoji", "👍").unwrap().as_str(), "👍");
        assert_eq!(Emoji::parse("emoji", "👍🏽").unwrap().as_str(), "👍🏽");
        assert_eq!(
            Emoji::parse("emoji", "❤").unwrap(),
            Emoji::parse("emoji", "❤️").unwrap()
        );
        assert_eq!(Emoji::parse("emoji", "👩‍👩‍👧‍👦").unwrap().as_str(), "👩‍👩‍👧‍👦");
        for refused in ["", "a", "👍👍", " 👍", ":+1:", &"👍".repeat(640)] {
            assert!(Emoji::parse("emoji", refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn mentions_are_whole_names_after_an_at() {
        assert_eq!(
            mentioned_usernames("@Ann and @bob_2, not mail@cat.io nor @@dan, @ann again; @al"),
            ["ann", "bob_2"]
        );
        assert_eq!(mentioned_usernames("(@eve)"), ["eve"]);
        assert!(mentioned_usernames(&format!("@{}", "x".repeat(33))).is_empty());
        let many: String = (0..50).map(|i| format!("@user{i} ")).collect();
        assert_eq!(mentioned_usernames(&many).len(), MAX_MENTIONS);
    }
}
