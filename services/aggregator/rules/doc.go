// Package rules runs iochub's alert rules in the aggregator role: the pure
// evaluation of a rule against entity states (Check, Evaluator), and the
// Engine that reads the STATE stream, keeps for each (rule, entity) since
// when the rule's condition holds, and raises a CAP alert on FEEDS once it
// has held for the rule's duration, then cancels it when the condition stops
// holding. A raised alert is an ordinary alert of the source "rules": the
// aggregator stores it and gives it the same lifecycle and views as any
// other, with the rule's id.
//
// The rule model, its parsing and its validation live in internal/alertrule,
// which readers such as the gateway import instead of this package. This
// package writes no database.
package rules
