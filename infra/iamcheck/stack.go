package iamcheck

import (
	"fmt"
	"strings"

	"github.com/chronicle-go/chronicle/infra/template"
)

// Stack is a template.Resolver that names a stack's resources as
// CloudFormation would, without AWS: for checks that need ARNs but no
// deployment (the template's own tests, cmd/iamcheck).
type Stack struct {
	Name, Region, Account string
	tpl                   *template.Template
	types                 map[string]string
	tableNames            map[string]string
	queueNames            map[string]string
	streamARNs            map[string]string // by table; see Name
	keyIDs                map[string]string // KMS keys: id by logical id; see SetName
}

var _ template.Resolver = (*Stack)(nil)

// NewStack names tpl's resources for a stack called name.
func NewStack(tpl *template.Template, name, region, account string) (*Stack, error) {
	s := &Stack{Name: name, Region: region, Account: account, tpl: tpl, types: map[string]string{},
		tableNames: map[string]string{}, queueNames: map[string]string{}}
	for id, r := range tpl.Resources {
		s.types[id] = r.AWSCloudFormationType()
	}
	tables, err := tpl.Tables()
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		n := name + "-" + t.Name
		if t.TableName != "" {
			if n, err = tpl.Resolve(t.TableName, s); err != nil {
				return nil, fmt.Errorf("table %s: %w", t.Name, err)
			}
		}
		s.tableNames[t.Name] = n
	}
	queues, err := tpl.Queues()
	if err != nil {
		return nil, err
	}
	for _, q := range queues {
		n := name + "-" + q.Name
		if q.FIFO {
			n += ".fifo"
		}
		if q.QueueName != "" {
			if n, err = tpl.Resolve(q.QueueName, s); err != nil {
				return nil, fmt.Errorf("queue %s: %w", q.Name, err)
			}
		}
		s.queueNames[q.Name] = n
	}
	return s, nil
}

// Ref implements template.Resolver.
func (s *Stack) Ref(name string) (string, error) {
	switch name {
	case "AWS::StackName":
		return s.Name, nil
	case "AWS::Region":
		return s.Region, nil
	case "AWS::AccountId":
		return s.Account, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return "", nil
	}
	switch s.types[name] {
	case "":
		return "", fmt.Errorf("Ref %s: no such resource or pseudo parameter", name)
	case template.TypeTable:
		return s.tableNames[name], nil
	case template.TypeQueue:
		return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", s.Region, s.Account, s.queueNames[name]), nil
	case TypeKMSKey:
		return s.keyID(name), nil
	}
	return s.Name + "-" + name, nil
}

// GetAtt implements template.Resolver.
func (s *Stack) GetAtt(id, attr string) (string, error) {
	switch typ := s.types[id]; {
	case typ == template.TypeTable && attr == "Arn":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.Region, s.Account, s.tableNames[id]), nil
	case typ == template.TypeTable && attr == "StreamArn":
		if a := s.streamARNs[id]; a != "" {
			return a, nil
		}
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/1970-01-01T00:00:00.000", s.Region, s.Account, s.tableNames[id]), nil
	case typ == template.TypeQueue && attr == "Arn":
		return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", s.Region, s.Account, s.queueNames[id]), nil
	case typ == template.TypeQueue && attr == "QueueName":
		return s.queueNames[id], nil
	case typ == template.TypeQueue && attr == "QueueUrl":
		return s.Ref(id)
	case typ == "AWS::Logs::LogGroup" && attr == "Arn":
		return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s-%s:*", s.Region, s.Account, s.Name, id), nil
	case typ == template.TypeFunction && attr == "Arn":
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s-%s", s.Region, s.Account, s.Name, id), nil
	case typ == template.TypeRole && attr == "Arn":
		return fmt.Sprintf("arn:aws:iam::%s:role/%s-%s", s.Account, s.Name, id), nil
	case typ == TypeKMSKey && attr == "Arn":
		return KMSKeyARN(s.Region, s.Account, s.keyID(id)), nil
	case typ == TypeKMSKey && attr == "KeyId":
		return s.keyID(id), nil
	}
	return "", fmt.Errorf("Fn::GetAtt %s.%s: not something the check knows", id, attr)
}

// TypeKMSKey is the CloudFormation type of a KMS key.
const TypeKMSKey = "AWS::KMS::Key"

// keyID is the id of KMS key id: the one SetName gave, else one made up.
func (s *Stack) keyID(id string) string {
	if k := s.keyIDs[id]; k != "" {
		return k
	}
	return s.Name + "-" + id
}

// KMSKeyARN is the ARN of KMS key keyID.
func KMSKeyARN(region, account, keyID string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", region, account, keyID)
}

// SetName gives the resource id the physical name it has in the stack under
// test, in place of the one NewStack made up: a table's or a queue's name
// (the random names of a package test), a KMS key's id (the emulator's),
// or, for "Table.StreamArn", the
// ARN of the table's stream as the emulator reports it.
func (s *Stack) SetName(id, name string) error {
	if table, ok := strings.CutSuffix(id, ".StreamArn"); ok && s.types[table] == template.TypeTable {
		if s.streamARNs == nil {
			s.streamARNs = map[string]string{}
		}
		s.streamARNs[table] = name
		return nil
	}
	switch s.types[id] {
	case TypeKMSKey:
		if s.keyIDs == nil {
			s.keyIDs = map[string]string{}
		}
		s.keyIDs[id] = name
	case template.TypeTable:
		s.tableNames[id] = name
	case template.TypeQueue:
		s.queueNames[id] = name
	default:
		return fmt.Errorf("name %s %q: not a table or a queue of the template", id, name)
	}
	return nil
}
