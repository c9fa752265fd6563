//! `cbpp` from R's lme4: contagious bovine pleuropneumonia in 15 zebu herds of the Boji
//! district (Ethiopia), new serological cases (`incidence`) among the animals of a herd
//! (`size`) in each of 4 periods; 56 rows (some herd-periods were lost to follow-up).
//! Source: Lesnoff, Laval, Bonnet, Abdicho, Workalemahu, Kifle, Peyraud, Lancelot &
//! Thiaucourt (2004), "Within-herd spread of contagious bovine pleuropneumonia in
//! Ethiopian highlands", *Preventive Veterinary Medicine* 64, 27–40; as shipped in lme4
//! (`data(cbpp)`, `man/cbpp.Rd`) and exported to CSV by Rdatasets
//! (vincentarelbundock/Rdatasets, `csv/lme4/cbpp.csv`). A small published table, so the
//! glmer comparison runs on every clone.

#![allow(dead_code)]

/// (herd, incidence, size, period), in lme4's row order.
pub const CBPP: [(u32, u32, u32, u32); 56] = [
    (1, 2, 14, 1),
    (1, 3, 12, 2),
    (1, 4, 9, 3),
    (1, 0, 5, 4),
    (2, 3, 22, 1),
    (2, 1, 18, 2),
    (2, 1, 21, 3),
    (3, 8, 22, 1),
    (3, 2, 16, 2),
    (3, 0, 16, 3),
    (3, 2, 20, 4),
    (4, 2, 10, 1),
    (4, 0, 10, 2),
    (4, 2, 9, 3),
    (4, 0, 6, 4),
    (5, 5, 18, 1),
    (5, 0, 25, 2),
    (5, 0, 24, 3),
    (5, 1, 4, 4),
    (6, 3, 17, 1),
    (6, 0, 17, 2),
    (6, 0, 18, 3),
    (6, 1, 20, 4),
    (7, 8, 16, 1),
    (7, 1, 10, 2),
    (7, 3, 9, 3),
    (7, 0, 5, 4),
    (8, 12, 34, 1),
    (9, 2, 9, 1),
    (9, 0, 6, 2),
    (9, 0, 8, 3),
    (9, 0, 6, 4),
    (10, 1, 22, 1),
    (10, 1, 22, 2),
    (10, 0, 18, 3),
    (10, 2, 22, 4),
    (11, 0, 25, 1),
    (11, 5, 27, 2),
    (11, 3, 22, 3),
    (11, 1, 22, 4),
    (12, 2, 10, 1),
    (12, 1, 8, 2),
    (12, 0, 6, 3),
    (12, 0, 5, 4),
    (13, 1, 21, 1),
    (13, 2, 24, 2),
    (13, 0, 19, 3),
    (13, 0, 23, 4),
    (14, 11, 19, 1),
    (14, 0, 2, 2),
    (14, 0, 3, 3),
    (14, 0, 2, 4),
    (15, 1, 19, 1),
    (15, 1, 15, 2),
    (15, 1, 15, 3),
    (15, 0, 15, 4),
];
