// Package iamcheck checks the AWS calls that the functions make against the
// IAM roles that template.yaml gives them. The emulators enforce no IAM, so
// without it a call that the role does not grant passes every test and
// fails only in AWS (the notifier's GetItem did).
//
// Three parts:
//
//   - Policies reads each function's role from the template (its inline
//     policies, with Ref, Fn::GetAtt and Fn::Sub resolved by a
//     template.Resolver to the names of the stack under test) and Policy.Check
//     matches a call against it as IAM does: actions case-insensitively,
//     resources case-sensitively, "*" and "?" as wildcards, Deny first,
//     StringEquals/StringLike conditions on the keys the call carries, and
//     ForAllValues:/ForAnyValue: on the multivalued ones (dynamodb:LeadingKeys:
//     see conditionHolds for the empty set, and why the check fails closed).
//   - Checker.APIOptions is a middleware for a function's SDK clients that
//     turns every operation into the calls IAM authorizes (an action on a
//     resource ARN: a table, an index, a stream, a queue, an SES identity;
//     "*" for actions without resource-level permissions; a transaction per
//     item), each DynamoDB item call with its leading keys (the partition
//     keys of its items, the tables' key schemas read from the template),
//     and checks each one. Only tests install it (the local runner when
//     its Config asks; ForTest in package tests that build a handler
//     themselves, on tables and queues of random names): nothing of it is
//     in the functions' binaries.
//   - LambdaCalls are the calls Lambda itself makes with a function's role
//     (its event source mappings, its logs), which no test of the code can
//     record: they are checked from the template.
//
// Every checked call can be written to a directory (LogDirEnv, which make
// test sets), one JSON line per distinct call; Summarize reads the lines of
// every test process and reports the calls no role granted and the grants no
// call used (cmd/iamcheck).
package iamcheck
