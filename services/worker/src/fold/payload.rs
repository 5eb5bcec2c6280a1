//! An event payload parsed for the fold: its top-level fields, with string values borrowed
//! from the event's text where no unescaping is needed. Payloads are flat objects of a few
//! fields, so this replaces a `serde_json::Value` tree (a map and a string per field) that
//! was a tenth of the fold's CPU time. Semantics follow `Value`: a repeated key keeps its last
//! value; a number is an integer when it fits `i64`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
    /// JSON `null`.
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A number: as `i64` when it is an integer that fits, and as `f64`.
    Number(Option<i64>, f64),
    /// A boolean, array or object (the fold reads none of them).
    Other,
}

/// The top-level fields of a payload, in text order.
#[derive(Debug, Default)]
pub struct Payload<'a>(Vec<(Cow<'a, str>, Raw<'a>)>);

impl<'a> Payload<'a> {
    /// Parses a payload's JSON text, which must be an object.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let payload = deserializer
            .deserialize_any(PayloadVisitor)
            .and_then(|p| deserializer.end().map(|()| p));
        payload.map_err(|e| match e.classify() {
            serde_json::error::Category::Data => "payload is not a JSON object".to_owned(),
            _ => format!("payload is not valid JSON: {e}"),
        })
    }

    /// The field's value (the last one when the key repeats).
    pub fn get(&self, name: &str) -> Option<&Raw<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<Text<'de>>()? {
            fields.push((key.0, map.next_value::<Value<'de>>()?.0));
        }
        Ok(Payload(fields))
    }
}

/// A string, borrowed when the text holds it verbatim.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

struct Value<'a>(Raw<'a>);

impl<'de> de::Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Value(Raw::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Value(Raw::Null))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Value(Raw::Other))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Value(Raw::Number(Some(v), v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Value(Raw::Number(i64::try_from(v).ok(), v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Value(Raw::Number(None, v)))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Value(Raw::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Value(Raw::Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Value(Raw::Str(Cow::Owned(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value(Raw::Other))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Value(Raw::Other))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_borrow_unescaped_strings_and_keep_the_last_of_a_repeated_key() {
        let text = r#"{"title": "plain", "note": "a \"quoted\" word", "n": 7, "big": 18446744073709551615,
                       "x": 1.5, "gone": null, "flag": true, "list": [1, {"a": 2}], "n": -3}"#;
        let p = Payload::parse(text).unwrap();
        assert!(matches!(
            p.get("title"),
            Some(Raw::Str(Cow::Borrowed("plain")))
        ));
        assert_eq!(
            p.get("note"),
            Some(&Raw::Str(Cow::Owned("a \"quoted\" word".to_owned())))
        );
        assert_eq!(p.get("n"), Some(&Raw::Number(Some(-3), -3.0)));
        assert_eq!(p.get("big"), Some(&Raw::Number(None, u64::MAX as f64)));
        assert_eq!(p.get("x"), Some(&Raw::Number(None, 1.5)));
        assert_eq!(p.get("gone"), Some(&Raw::Null));
        assert_eq!(p.get("flag"), Some(&Raw::Other));
        assert_eq!(p.get("list"), Some(&Raw::Other));
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn a_payload_must_be_one_json_object() {
        assert_eq!(
            Payload::parse("[1, 2]").unwrap_err(),
            "payload is not a JSON object"
        );
        assert_eq!(
            Payload::parse("\"text\"").unwrap_err(),
            "payload is not a JSON object"
        );
        assert!(Payload::parse("{\"a\": ")
            .unwrap_err()
            .starts_with("payload is not valid JSON: "));
        assert!(Payload::parse("{} {}")
            .unwrap_err()
            .starts_with("payload is not valid JSON: "));
    }
}
