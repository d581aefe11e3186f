//! The chains In Process Moments live on (`INPROCESS_CHAIN`), and what follows from each: its
//! chain id, its USDC (the currency Moments are priced in, 6 decimals: a price in millionths
//! of a USDC is its on-chain amount), and the prefix of a Moment's link.

/// A chain In Process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Base mainnet (the default).
    Base,
    /// Base Sepolia, In Process's testnet.
    BaseSepolia,
}

impl Chain {
    /// `base` or `base-sepolia`.
    pub fn parse(word: &str) -> Result<Self, String> {
        match word.trim().to_ascii_lowercase().as_str() {
            "base" => Ok(Self::Base),
            "base-sepolia" => Ok(Self::BaseSepolia),
            other => Err(format!("'{other}' is not base or base-sepolia")),
        }
    }

    pub fn id(self) -> u64 {
        match self {
            Self::Base => 8453,
            Self::BaseSepolia => 84532,
        }
    }

    /// USDC's contract on this chain.
    pub fn usdc(self) -> &'static str {
        match self {
            Self::Base => "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            Self::BaseSepolia => "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        }
    }

    /// The chain's word in a Moment's In Process link.
    pub fn link_prefix(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::BaseSepolia => "bsep",
        }
    }

    /// The link texted back for token `token_id` of collection `contract` on `site`.
    pub fn moment_link(self, site: &str, contract: &str, token_id: &str) -> String {
        format!(
            "{}/sms/{}:{contract}/{token_id}",
            site.trim_end_matches('/'),
            self.link_prefix()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_chain_gives_its_id_currency_and_link() {
        assert_eq!(Chain::parse("base"), Ok(Chain::Base));
        assert_eq!(Chain::parse(" Base-Sepolia "), Ok(Chain::BaseSepolia));
        assert!(Chain::parse("ethereum").is_err());
        assert_eq!((Chain::Base.id(), Chain::BaseSepolia.id()), (8453, 84532));
        assert_eq!(
            Chain::Base.usdc(),
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        );
        assert_eq!(
            Chain::Base.moment_link("https://inprocess.world/", "0xabc", "7"),
            "https://inprocess.world/sms/base:0xabc/7"
        );
        assert_eq!(
            Chain::BaseSepolia.moment_link("https://inprocess.world", "0xabc", "1"),
            "https://inprocess.world/sms/bsep:0xabc/1"
        );
    }
}
