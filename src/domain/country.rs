//! Country names for region codes, so a refusal names the country a person knows.

use super::phone_number::{AllowedRegions, Region};

/// English short names of the regions whose numbers are most likely to be seen; any other
/// region is named by its ISO 3166 code.
const NAMES: &[(&str, &str)] = &[
    ("AE", "the United Arab Emirates"),
    ("AG", "Antigua and Barbuda"),
    ("AR", "Argentina"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BG", "Bulgaria"),
    ("BR", "Brazil"),
    ("BS", "the Bahamas"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CL", "Chile"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CZ", "the Czech Republic"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("DO", "the Dominican Republic"),
    ("EG", "Egypt"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "the United Kingdom"),
    ("GH", "Ghana"),
    ("GR", "Greece"),
    ("GU", "Guam"),
    ("HK", "Hong Kong"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IN", "India"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JM", "Jamaica"),
    ("JP", "Japan"),
    ("KE", "Kenya"),
    ("KR", "South Korea"),
    ("LU", "Luxembourg"),
    ("MA", "Morocco"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("NG", "Nigeria"),
    ("NL", "the Netherlands"),
    ("NO", "Norway"),
    ("NZ", "New Zealand"),
    ("PE", "Peru"),
    ("PH", "the Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PR", "Puerto Rico"),
    ("PT", "Portugal"),
    ("RO", "Romania"),
    ("RU", "Russia"),
    ("SA", "Saudi Arabia"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("TH", "Thailand"),
    ("TR", "Turkey"),
    ("TT", "Trinidad and Tobago"),
    ("TW", "Taiwan"),
    ("UA", "Ukraine"),
    ("US", "the United States"),
    ("VI", "the U.S. Virgin Islands"),
    ("VN", "Vietnam"),
    ("ZA", "South Africa"),
];

/// The country's name ("Germany", "the United States"), or its code when the table has none.
pub fn name_of(region: Region) -> String {
    let code = region.as_ref();
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_owned(), |(_, name)| (*name).to_owned())
}

/// The name as it starts a list entry: "United States", not "the United States".
fn bare(name: &str) -> &str {
    name.strip_prefix("the ").unwrap_or(name)
}

/// Why a number from `region` (`None`: no country at all) cannot be connected, naming the
/// countries that can.
pub fn not_allowed(region: Option<Region>, allowed: &AllowedRegions) -> String {
    let from = match region {
        Some(region) => format!("Numbers in {} cannot be connected", name_of(region)),
        None => "Numbers that belong to no country cannot be connected".to_owned(),
    };
    match allowed {
        AllowedRegions::All => from,
        AllowedRegions::Only(regions) => {
            let names: Vec<String> = regions
                .iter()
                .map(|r| bare(&name_of(*r)).to_owned())
                .collect();
            format!("{from}; allowed: {}", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> Region {
        code.parse().expect("a region code")
    }

    #[test]
    fn a_refusal_names_the_country_and_the_allowed_ones() {
        let allowed = AllowedRegions::parse("US,CA").expect("parses");
        assert_eq!(
            not_allowed(Some(region("DE")), &allowed),
            "Numbers in Germany cannot be connected; allowed: United States, Canada"
        );
        assert_eq!(
            not_allowed(Some(region("GB")), &allowed),
            "Numbers in the United Kingdom cannot be connected; allowed: United States, Canada"
        );
    }

    #[test]
    fn a_region_missing_from_the_table_is_named_by_its_code() {
        assert_eq!(name_of(region("TV")), "TV");
    }

    #[test]
    fn the_table_is_sorted_and_every_code_is_a_region() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, _) in NAMES {
            assert_eq!(region(code).as_ref(), *code);
        }
    }
}
