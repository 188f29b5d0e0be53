//! Kafka record bytes to events, by topic. A record that does not decode is
//! `malformed`; one whose enums hold numbers this build does not know (a
//! newer producer) is `unknown_enum`; one that breaks a rule of
//! [`crate::validate`] is `invalid`. All go to the DLQ, never into the core.

use prost::Message;
use tradewind_core::Reason;

use crate::validate;
use tradewind_proto::{
    Country, Currency, DeviceKind, FxRate, IotReading, LogisticsEvent, MerchantCategory, Milestone,
    Payment, PaymentChannel, PaymentMethod, PaymentStatus, Stream, TransportMode,
};

pub enum Decoded {
    Payment(Payment),
    Iot(IotReading),
    Logistics(LogisticsEvent),
    Fx(FxRate),
}

impl Decoded {
    /// The event's own time; FX quotes have none that latency is measured from.
    pub fn event_time(&self) -> Option<i64> {
        match self {
            Decoded::Payment(p) => Some(p.event_time),
            Decoded::Iot(r) => Some(r.event_time),
            Decoded::Logistics(e) => Some(e.event_time),
            Decoded::Fx(_) => None,
        }
    }
}

fn known<E: TryFrom<i32>>(values: &[i32]) -> Result<(), Reason> {
    if values.iter().all(|v| E::try_from(*v).is_ok()) {
        Ok(())
    } else {
        Err(Reason::UnknownEnum)
    }
}

pub fn decode(stream: Stream, bytes: &[u8]) -> Result<Decoded, Reason> {
    let malformed = |_| Reason::Malformed;
    Ok(match stream {
        Stream::Payments => {
            let p = Payment::decode(bytes).map_err(malformed)?;
            known::<Country>(&[p.payer_country, p.payee_country])?;
            known::<Currency>(&[p.currency])?;
            known::<PaymentMethod>(&[p.method])?;
            known::<PaymentChannel>(&[p.channel])?;
            known::<PaymentStatus>(&[p.status])?;
            known::<MerchantCategory>(&[p.merchant_category])?;
            validate::payment(&p)?;
            Decoded::Payment(p)
        }
        Stream::Iot => {
            let r = IotReading::decode(bytes).map_err(malformed)?;
            known::<DeviceKind>(&[r.kind])?;
            known::<Country>(&[r.country])?;
            validate::reading(&r)?;
            Decoded::Iot(r)
        }
        Stream::Logistics => {
            let e = LogisticsEvent::decode(bytes).map_err(malformed)?;
            known::<TransportMode>(&[e.mode])?;
            known::<Country>(&[e.origin_country, e.destination_country])?;
            known::<Milestone>(&[e.milestone])?;
            validate::logistics(&e)?;
            Decoded::Logistics(e)
        }
        Stream::Fx => {
            let q = FxRate::decode(bytes).map_err(malformed)?;
            known::<Currency>(&[q.base, q.quote])?;
            validate::fx(&q)?;
            Decoded::Fx(q)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_is_malformed_and_new_enum_values_are_unknown() {
        assert!(matches!(
            decode(Stream::Payments, &[0x0F, 1, 2, 3]),
            Err(Reason::Malformed)
        ));
        let future = Payment {
            method: 42,
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(
            decode(Stream::Payments, &future),
            Err(Reason::UnknownEnum)
        ));
        let ok = Payment {
            payment_id: 7,
            event_time: 1_800_000_000_000,
            amount_minor: 100,
            method: 1,
            channel: 1,
            currency: 1,
            payer_country: 1,
            payee_country: 2,
            status: 2,
            ..Default::default()
        };
        assert!(decode(Stream::Payments, &ok.encode_to_vec()).is_ok());
    }
}
