//! A serde `Deserializer` over the span-keeping YAML tree.
//!
//! Every error it returns carries the field path it happened at, so [`super::load`] can locate it,
//! replace the offending node by [`Kind::Poison`] and deserialize again: that is how one run of
//! `validate` reports every structural problem instead of the first.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::yaml::{Entry, Kind, Node, Path, Resolved, resolve};

/// What went wrong, in terms the recovery loop can act on.
#[derive(Debug, Clone)]
pub enum ErrorKind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    /// Set by the innermost deserializer that saw the error.
    pub path: Option<Path>,
    /// The error is about a mapping key (an unknown field), not its value.
    pub at_key: bool,
}

impl Error {
    fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            path: None,
            at_key: false,
        }
    }

    fn located(mut self, path: &Path, at_key: bool) -> Error {
        if self.path.is_none() {
            self.path = Some(path.clone());
            self.at_key = at_key;
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::UnknownField { field, .. } => write!(f, "unknown field `{field}`"),
            ErrorKind::MissingField(field) => write!(f, "missing field `{field}`"),
            ErrorKind::UnknownVariant { variant, expected } => {
                write!(
                    f,
                    "unknown value `{variant}`, expected {}",
                    one_of(expected)
                )
            }
            ErrorKind::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// "`a`, `b` or `c`"
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".into(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(ErrorKind::Invalid(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::new(ErrorKind::Invalid(format!(
            "expected {}, found {}",
            expected(exp),
            unexpected(&unexp)
        )))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::new(ErrorKind::Invalid(format!(
            "invalid value {}: expected {}",
            unexpected(&unexp),
            expected(exp)
        )))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new(ErrorKind::UnknownField {
            field: field.to_owned(),
            expected,
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(ErrorKind::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Error::new(ErrorKind::MissingField(field))
    }
}

/// serde names Rust types ("u32"); plan authors read YAML.
fn expected(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number ≥ 0".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" => "text".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        _ if text.starts_with("struct ") => "a mapping".into(),
        _ => text,
    }
}

fn unexpected(u: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match u {
        U::Unit => "an empty value".into(),
        U::Str(s) => format!("string {s:?}"),
        U::Signed(i) => format!("integer `{i}`"),
        U::Unsigned(i) => format!("integer `{i}`"),
        U::Float(x) => format!("number `{x}`"),
        U::Bool(b) => format!("boolean `{b}`"),
        U::Seq => "a list".into(),
        U::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// Deserializes one node; `path` is where it sits in the plan.
pub struct NodeDe<'a> {
    pub node: &'a Node,
    pub path: Path,
}

impl<'a> NodeDe<'a> {
    pub fn new(node: &'a Node, path: Path) -> Self {
        NodeDe { node, path }
    }

    fn fail<T>(&self, exp: &str) -> Result<T, Error> {
        let msg = format!("expected {exp}, found {}", self.node.describe());
        Err(Error::new(ErrorKind::Invalid(msg)).located(&self.path, false))
    }
}

/// Primitive requests: poison answers with its default, anything else goes through
/// `deserialize_any` so the visitor's own checks (range, type) produce the message.
macro_rules! forward_to_any {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            if matches!(self.node.kind, Kind::Poison) {
                return PoisonDe(self.path).$method(visitor);
            }
            self.deserialize_any(visitor)
        })*
    };
}

/// Requests answered by another method of the same deserializer.
/// Requests answered by another method of the same deserializer; `(name: Type, …)` after a
/// method lists the arguments it ignores.
macro_rules! forward_to {
    ($target:ident: $($method:ident $(($($arg:ident: $ty:ty),*))?)*) => {
        $(fn $method<V: Visitor<'de>>(
            self,
            $($($arg: $ty,)*)?
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.$target(visitor)
        })*
    };
}

/// A newtype struct is deserialized as what it wraps, from the same node.
macro_rules! newtype_struct_is_its_content {
    () => {
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }
    };
}

impl NodeDe<'_> {
    /// A container request: the node is of the wanted kind (`is`) and goes through
    /// `deserialize_any`, or is poison and `poison` answers, or the wrong kind (`exp` was wanted).
    fn container<'de, V: Visitor<'de>>(
        self,
        is: bool,
        exp: &str,
        visitor: V,
        poison: impl FnOnce(PoisonDe, V) -> Result<V::Value, Error>,
    ) -> Result<V::Value, Error> {
        use de::Deserializer as _;
        match &self.node.kind {
            _ if is => self.deserialize_any(visitor),
            Kind::Poison => poison(PoisonDe(self.path), visitor),
            _ => self.fail(exp),
        }
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = self.path.clone();
        let result = match &self.node.kind {
            Kind::Poison => return PoisonDe(path).deserialize_any(visitor),
            Kind::Scalar(s) => match resolve(s) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(x) => visitor.visit_f64(x),
                Resolved::Str(t) => visitor.visit_str(t),
            },
            Kind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Kind::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
            }),
        };
        result.map_err(|e: Error| e.located(&path, false))
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_ignored_any
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // A plain `3` or `true` where text is wanted is taken as the text the author wrote.
        match &self.node.kind {
            Kind::Scalar(s) if resolve(s) != Resolved::Null => visitor
                .visit_str(&s.text)
                .map_err(|e: Error| e.located(&self.path, false)),
            Kind::Scalar(_) => self.fail("text"),
            Kind::Poison => PoisonDe(self.path).deserialize_str(visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    forward_to! { deserialize_str: deserialize_string deserialize_identifier }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            Kind::Poison => visitor.visit_none(),
            Kind::Scalar(s) if resolve(s) == Resolved::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    forward_to! { deserialize_any: deserialize_unit_struct(_name: &'static str) }

    newtype_struct_is_its_content!();

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let is = matches!(self.node.kind, Kind::Seq(_));
        self.container(is, "a list", visitor, |p, v| p.deserialize_seq(v))
    }

    forward_to! {
        deserialize_seq: deserialize_tuple(_len: usize)
        deserialize_tuple_struct(_name: &'static str, _len: usize)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let is = matches!(self.node.kind, Kind::Map(_));
        self.container(is, "a mapping", visitor, |p, v| p.deserialize_map(v))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let is = matches!(self.node.kind, Kind::Map(_));
        self.container(is, "a mapping", visitor, |p, v| {
            p.deserialize_struct(name, fields, v)
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.kind {
            Kind::Scalar(s) if resolve(s) != Resolved::Null => {
                let de: de::value::StrDeserializer<'_, Error> = s.text.as_str().into_deserializer();
                visitor
                    .visit_enum(de)
                    .map_err(|e: Error| e.located(&self.path, false))
            }
            Kind::Poison => PoisonDe(self.path).deserialize_enum(name, variants, visitor),
            _ => self.fail(&format!("one of {}", one_of(variants))),
        }
    }
}

struct SeqDe<'a, I> {
    items: I,
    index: usize,
    path: &'a Path,
}

impl<'de, 'n, I: Iterator<Item = &'n Node>> de::SeqAccess<'de> for SeqDe<'_, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = self.path.index(self.index);
        self.index += 1;
        seed.deserialize(NodeDe::new(node, path)).map(Some)
    }
}

struct MapDe<'a, 'n, I> {
    entries: I,
    value: Option<(&'n Node, Path)>,
    path: &'a Path,
}

impl<'de, 'n, I: Iterator<Item = &'n Entry>> de::MapAccess<'de> for MapDe<'_, 'n, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let path = self.path.key(entry.key_text());
        let key = seed
            .deserialize(NodeDe::new(&entry.key, path.clone()))
            .map_err(|e| {
                // Errors about a key are errors of the entry: point at the key itself.
                let mut e = e;
                e.path = Some(path.clone());
                e.at_key = true;
                e
            })?;
        self.value = Some((&entry.value, path));
        Ok(Some(key))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let (node, path) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("value without a key"))?;
        seed.deserialize(NodeDe::new(node, path))
    }
}

/// Answers every request with an empty or default value, so a plan with errors can still be
/// checked past them. Whatever it produces is never reported on (see `Node::under_poison`).
struct PoisonDe(Path);

impl<'de> de::Deserializer<'de> for PoisonDe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(0.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_none()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(de::value::SeqDeserializer::new(
            std::iter::empty::<PoisonDe>(),
        ))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(
            PoisonDe,
            PoisonDe,
        )>()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let path = self.0;
        let entries = fields.iter().map(|f| (*f, PoisonDe(path.key(f))));
        visitor.visit_map(de::value::MapDeserializer::new(entries))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let first = variants.first().copied().unwrap_or_default();
        let de: de::value::StrDeserializer<'_, Error> = first.into_deserializer();
        visitor.visit_enum(de)
    }

    newtype_struct_is_its_content!();

    forward_to! {
        deserialize_i64: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_u8
        deserialize_u16 deserialize_u32 deserialize_u64
    }
    forward_to! { deserialize_f64: deserialize_f32 }
    forward_to! { deserialize_str: deserialize_string deserialize_identifier }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_char(' ')
    }
    forward_to! {
        deserialize_seq: deserialize_tuple(_len: usize)
        deserialize_tuple_struct(_name: &'static str, _len: usize)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for PoisonDe {
    type Deserializer = PoisonDe;

    fn into_deserializer(self) -> PoisonDe {
        self
    }
}
