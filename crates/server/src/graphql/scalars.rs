//! Speckle's custom scalars: `DateTime` (ISO-8601 with milliseconds, as JavaScript prints it),
//! `BigInt` (a JSON number; strings of digits accepted on input) and `JSONObject`.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::clock::Millis;

#[derive(Debug, Clone, Copy)]
pub struct DateTime(pub Millis);

impl DateTime {
    pub fn to_iso(self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_default()
    }
}

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(s) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| DateTime((t.unix_timestamp_nanos() / 1_000_000) as Millis))
            .map_err(|e| InputValueError::custom(format!("not an ISO-8601 date-time: {e}")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_iso())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BigInt(pub i64);

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(BigInt)
                .ok_or_else(|| InputValueError::custom("BigInt must be a whole number")),
            Value::String(s) => s
                .trim()
                .parse()
                .map(BigInt)
                .map_err(|_| InputValueError::custom("BigInt must be a whole number")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(Number::from(self.0))
    }
}

#[derive(Debug, Clone)]
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

#[Scalar(name = "JSONObject")]
impl ScalarType for JsonObject {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value.into_json() {
            Ok(serde_json::Value::Object(map)) => Ok(JsonObject(map)),
            _ => Err(InputValueError::custom("JSONObject must be an object")),
        }
    }

    fn to_value(&self) -> Value {
        Value::from_json(serde_json::Value::Object(self.0.clone())).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_print_like_javascript() {
        assert_eq!(DateTime(0).to_iso(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            DateTime(1_795_000_000_123).to_iso(),
            "2026-11-18T11:06:40.123Z"
        );
        let parsed = DateTime::parse(Value::String("2026-11-18T11:06:40.123Z".into())).unwrap();
        assert_eq!(parsed.0, 1_795_000_000_123);
    }

    #[test]
    fn big_ints_accept_numbers_and_digit_strings() {
        assert_eq!(BigInt::parse(Value::Number(2000.into())).unwrap().0, 2000);
        assert_eq!(
            BigInt::parse(Value::String("3154000000000".into()))
                .unwrap()
                .0,
            3_154_000_000_000
        );
        assert!(BigInt::parse(Value::String("soon".into())).is_err());
        assert!(BigInt::parse(Value::Boolean(true)).is_err());
    }
}
