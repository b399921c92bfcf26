package aqi

import "errors"

var (
	// ErrInvalidConcentration means a concentration is negative, NaN or infinite.
	ErrInvalidConcentration = errors.New("invalid concentration (must be a finite number >= 0 µg/m³)")

	// ErrUnknownPollutant means a pollutant value or name outside PM2.5, PM10, O3, CO, SO2 and NO2.
	ErrUnknownPollutant = errors.New("unknown pollutant")

	// ErrNoTable means the decision has no breakpoint table for that pollutant and averaging period
	// (it has 1-hour and 8-hour tables for O3, 1-hour tables for CO, SO2 and NO2, and one table for
	// PM2.5 and PM10 used with the NowCast and with the 24-hour mean).
	ErrNoTable = errors.New("no breakpoint table for this pollutant and averaging period")

	// ErrAboveTable means a concentration above the last breakpoint of a table the decision does not
	// extend: the O3 8-hour table ends at 400 µg/m³ (index 300), and above it the 8-hour value is not used.
	ErrAboveTable = errors.New("concentration above the last breakpoint of the table")

	// ErrNoData means there is no hourly value in the period a computation looks at.
	ErrNoData = errors.New("no hourly value")

	// ErrTooFewRecentHours means the NowCast cannot be computed because fewer than 2 of the latest
	// 3 hourly values (c1, c2, c3) are present, as the decision requires.
	ErrTooFewRecentHours = errors.New("NowCast needs at least 2 of the latest 3 hourly values")

	// ErrNoHourlyValue means a pollutant rated on its 1-hour mean (O3, CO, SO2, NO2) has no value
	// for the hour asked for, although it has values in the hours before.
	ErrNoHourlyValue = errors.New("no 1-hour mean for this hour")

	// ErrIncompleteDay means too few hourly values for a 24-hour mean (see MinDayHours).
	ErrIncompleteDay = errors.New("too few hourly values for a 24-hour mean")

	// ErrNotComputed means no AQI: the decision requires a sub-index of PM2.5 or PM10, and neither
	// could be computed. Result.Err wraps it and Result.Missing says why for each pollutant.
	ErrNotComputed = errors.New("AQI could not be computed")

	// ErrTooOld means an observation older than the hours a Station keeps (StationHours behind
	// its newest hour); it is dropped.
	ErrTooOld = errors.New("observation older than the hours kept")
)
